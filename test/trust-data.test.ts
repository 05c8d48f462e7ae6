/**
 * Issue 15 item 1: `--data NAME:SPLIT` is honoured by every command through one data-selection
 * path (src/corpus/load.ts parseDataSpec), and an unknown split is refused with exit 2 before a
 * model loads or a results folder is named after it. Also item 10's format sniffing of a
 * CoNLL-U file named `.txt`.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCorpus, loadSplits, parseDataSpec } from '../src/corpus/load.js';
import { sniffFormat } from '../src/corpus/formats.js';
import { InputError } from '../src/util/errors.js';
import { dataMirror, fixturesDir, runCli, tempDir } from './helpers.js';

process.env.BERT_PROBE_DATA_MIRROR ??= dataMirror;

test('parseDataSpec refuses an unknown split of a registry dataset (exit-2 InputError)', () => {
  assert.throws(() => parseDataSpec('ewt:nosuch'), (e: unknown) => e instanceof InputError && /has no split "nosuch"/.test(e.message));
  assert.throws(() => parseDataSpec('ewt', 'nosuch'), InputError);
  assert.throws(() => parseDataSpec('ewt:dev', 'test'), (e: unknown) => e instanceof InputError && /two different splits/.test(e.message));
  assert.deepEqual(parseDataSpec('ewt:dev'), { kind: 'registry', name: 'ewt', split: 'dev' });
  assert.deepEqual(parseDataSpec('ewt', 'dev'), { kind: 'registry', name: 'ewt', split: 'dev' });
});

test('loadSplits honours NAME:SPLIT: every split comes from that one split', async () => {
  const whole = await loadCorpus('ptb:test');
  const s = await loadSplits('ptb:test');
  const ids = new Set(whole.sentences.map((x) => x.id));
  for (const k of ['train', 'dev', 'test'] as const) {
    assert.ok(s[k].sentences.length > 0, k);
    for (const x of s[k].sentences) assert.ok(ids.has(x.id), `${k} sentence ${x.id} is from ptb:test`);
  }
  assert.equal(s.train.sentences.length + s.dev.sentences.length + s.test.sentences.length, whole.sentences.length);
  await assert.rejects(loadSplits('ptb:test', { evalSplit: 'dev' }), InputError);
});

test('PATH:SPLIT is honoured like NAME:SPLIT', async () => {
  const dir = tempDir();
  const f = join(dir, 'c.conllu');
  const sent = (i: number) => `# sent_id = s${i}\n1\tA${i}\tA\tX\t_\t_\t0\troot\t_\t_\n2\tb\tb\tX\t_\t_\t1\tdep\t_\t_\n\n`;
  writeFileSync(f, Array.from({ length: 20 }, (_, i) => sent(i)).join(''));
  const dev = await loadCorpus(`${f}:dev`);
  assert.equal(dev.sentences.length, 2);
  await assert.rejects(loadCorpus(`${f}:nosuch`), InputError);
});

test('structural, extract and data info refuse ewt:nosuch with exit 2 and write no results folder', () => {
  const cwd = tempDir();
  const model = join(fixturesDir, 'tiny-bert');
  for (const args of [
    ['structural', '--data', 'ewt:nosuch', '--model', model, '--limit', '5', '--max-epochs', '1'],
    ['extract', '--data', 'ewt:nosuch', '--model', model, '--layers', '1'],
    ['data', 'info', 'ewt:nosuch'],
  ]) {
    const r = runCli(args, { cwd });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /has no split "nosuch"/);
  }
  assert.ok(!existsSync(join(cwd, 'results')) || readdirSync(join(cwd, 'results')).length === 0, 'no results folder named after the bad split');
});

test('--layers out of range fails before the model builds (exit 2)', () => {
  const r = runCli(['structural', '--data', 'ptb', '--model', join(fixturesDir, 'tiny-bert'), '--layers', '0-40', '--limit', '5'], { cwd: tempDir() });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /bad --layers value/);
  assert.doesNotMatch(r.stderr, /loaded /);
});

test('a CoNLL-U file named .txt is read as CoNLL-U, not as plain text', () => {
  const ud = readFileSync(join(dataMirror, 'ud-english-ewt', readdirSync(join(dataMirror, 'ud-english-ewt')).find((n) => n.endsWith('dev.conllu'))!), 'utf8').slice(0, 5000);
  assert.equal(sniffFormat('tree.txt', ud), 'conllu');
  assert.equal(sniffFormat('notes.txt', 'just some words\nand more\n'), 'text');
});
