import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { isTempName } from '../src/util/atomic.js';
import { tempDir } from './helpers.js';
import { killAndWait, startChild, waitFor } from './results-helpers.js';

/**
 * A run killed with SIGKILL while writing must leave no partial file under a final name: every
 * file is either absent, a complete earlier version, or a complete new one (temporary names
 * may remain; readers ignore them). Completeness is checked from the content itself: the CSV
 * rows and JSONL lines carry their expected count, JSON parses, SVG and HTML are closed.
 */
function assertNoPartialFiles(dir: string): string[] {
  // the run lock (pid inside) and the ENOSPC reserve are ours; the lock is taken over by the next run once its process is gone
  const finals = readdirSync(dir).filter((f) => !isTempName(f) && f !== '.bert-probe-run.lock' && f !== '.bert-probe-reserve');
  for (const name of finals) {
    const text = readFileSync(join(dir, name), 'utf8');
    if (name.endsWith('.json')) {
      assert.doesNotThrow(() => JSON.parse(text), `${name} is not complete JSON`);
    } else if (name === 'results.csv') {
      const recs = parse(text) as string[][];
      assert.deepEqual(recs[0], ['i', 'total', 'layer', 'value', 'note']);
      const total = Number(recs[1][1]);
      assert.equal(recs.length - 1, total, `results.csv has ${recs.length - 1} of ${total} rows`);
      assert.ok(text.endsWith('\n'));
    } else if (name === 'predictions.jsonl') {
      assert.ok(text.endsWith('\n'), 'predictions.jsonl ends mid-line');
      const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; total: number });
      assert.equal(lines.length, lines[0].total, `predictions.jsonl has ${lines.length} of ${lines[0].total} lines`);
      lines.forEach((l, i) => assert.equal(l.i, i));
    } else if (name.endsWith('.svg')) {
      assert.match(text.trimEnd(), /<\/svg>$/, `${name} is cut short`);
    } else if (name.endsWith('.html')) {
      assert.match(text.trimEnd(), /<\/html>$/, `${name} is cut short`);
    } else {
      assert.fail(`unexpected file ${name}`);
    }
  }
  return finals;
}

test('SIGKILL in the middle of writing predictions.jsonl leaves the previous complete file', async () => {
  const dir = tempDir('bert-probe-kill-');
  const child = startChild('mid', dir);
  await waitFor(child, 'MID');
  await killAndWait(child);
  assert.equal(child.signalCode, 'SIGKILL');
  const names = readdirSync(dir);
  assert.ok(names.some(isTempName), `expected the interrupted temporary file, found ${names.join(', ')}`);
  const finals = assertNoPartialFiles(dir);
  for (const f of ['results.csv', 'summary.json', 'manifest.json', 'predictions.jsonl', 'report.html', 'value-by-layer.svg']) {
    assert.ok(finals.includes(f), `${f} missing`);
  }
  // the complete earlier version, not the interrupted one
  const first = JSON.parse(readFileSync(join(dir, 'predictions.jsonl'), 'utf8').split('\n')[0]) as { round: number; total: number };
  assert.deepEqual([first.round, first.total], [0, 2000]);
});

test('SIGKILL at random moments of a run that rewrites every file never leaves a partial one', async () => {
  // deterministic "random" delays (no flakiness from the seed, still spread over the writes)
  for (const delay of [0, 37, 113, 271]) {
    const dir = tempDir('bert-probe-kill-');
    const child = startChild('loop', dir);
    await waitFor(child, 'ROUND0');
    await new Promise((r) => setTimeout(r, delay));
    await killAndWait(child);
    assert.equal(child.signalCode, 'SIGKILL');
    const finals = assertNoPartialFiles(dir);
    assert.ok(finals.includes('results.csv') && finals.includes('predictions.jsonl') && finals.includes('manifest.json'));
  }
});
