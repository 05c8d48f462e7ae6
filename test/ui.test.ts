import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ui } from '../src/util/ui.js';

function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY, columns: 80, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

test('off a TTY a progress bar prints a plain line at each 10% and at the end', () => {
  const { stream, lines } = fakeStream(false);
  const bar = new Ui({}, stream).bar('extract', 100);
  for (let i = 0; i < 100; i++) bar.increment();
  bar.stop();
  assert.equal(lines.length, 10);
  assert.match(lines[0]!, /^extract: 10\/100 \(10%, \d+ s\)\n$/);
  assert.match(lines[9]!, /^extract: 100\/100 \(100%/);
  assert.ok(lines.every((l) => !l.includes('\x1b')), 'no control codes off a TTY');
});

test('--quiet silences progress entirely', () => {
  const { stream, lines } = fakeStream(false);
  const bar = new Ui({ quiet: true }, stream).bar('extract', 10);
  for (let i = 0; i < 10; i++) bar.increment();
  bar.stop();
  new Ui({ quiet: true }, stream).info('hello');
  assert.deepEqual(lines, []);
});
