import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../src/model/safetensors.js';
import { openStore } from '../src/extract/store.js';
import { parseShard } from '../src/cli/extract.js';
import { fixturesDir, repoRoot, runCli, tempDir } from './helpers.js';

// CLI tests: need `npm run build` (runCli spawns bin/bert-probe over dist/).
const tiny = join(fixturesDir, 'tiny-bert');
const sample = join(repoRoot, 'test', 'fixtures', 'extract', 'sample.conllu');

test('embed --pieces reproduces the fixture reference hidden states; word vectors are the mean of their pieces', () => {
  const ref = readSafetensors(join(fixturesDir, 'tiny-bert-reference.safetensors'));
  const text = (JSON.parse(ref.metadata.sentences!) as string[])[2]!;
  const pieces = runCli(['embed', text, '--model', tiny, '--layers', '0-3', '--pieces']);
  assert.equal(pieces.status, 0, pieces.stderr);
  const p = JSON.parse(pieces.stdout.trim());
  assert.deepEqual(p.tokens, (JSON.parse(ref.metadata.tokens!) as string[][])[2]);
  const T = ref.tensors.get('input_ids')!.shape[1]!;
  for (const l of [0, 1, 2, 3]) {
    const hs = ref.tensors.get(`hidden_states.${l}`)!.data;
    const rows = p.layers[`layer.${l}`] as number[][];
    assert.equal(rows.length, p.tokens.length);
    rows.forEach((row, t) => row.forEach((v, h) => assert.ok(Math.abs(v - hs[(2 * T + t) * 32 + h]!) < 1e-4, `layer ${l} piece ${t} dim ${h}`)));
  }
  const words = runCli(['embed', text, '--model', tiny, '--layers', '3']);
  assert.equal(words.status, 0, words.stderr);
  const w = JSON.parse(words.stdout.trim());
  assert.deepEqual(w.words, ['the', 'blood', 'cell', 'samples', 'were', 'contaminated', 'by', 'electrodynamics', '.']);
  const electro = w.layers['layer.3'][7] as number[];
  const mean = electro.map((_, h) => [8, 9, 10, 11].reduce((a, t) => a + p.layers['layer.3'][t][h], 0) / 4);
  electro.forEach((v, h) => assert.ok(Math.abs(v - mean[h]!) < 1e-6));
});

test('embed --file: one JSON line per sentence, word-level attentions with [CLS]/[SEP]; long lines windowed with attentions null', () => {
  const dir = tempDir();
  const file = join(dir, 'in.txt');
  writeFileSync(file, `Dogs bark.\n\n${Array(70).fill('cat').join(' ')}\nA\n`);
  const r = runCli(['embed', '--file', file, '--model', tiny, '--layers', '2,3', '--attentions']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3, 'blank lines skipped');
  assert.deepEqual(lines[0].words, ['dogs', 'bark', '.']);
  const a = lines[0].attentions['attn.2'] as number[][][];
  assert.deepEqual([a.length, a[0]!.length, a[0]![0]!.length], [4, 5, 5]);
  for (const head of a) for (const row of head) assert.ok(Math.abs(row.reduce((x, y) => x + y, 0) - 1) < 1e-5);
  assert.equal(lines[1].windows, 2);
  assert.equal(lines[1].attentions, null);
  assert.equal(lines[1].layers['layer.3'].length, 70);
  assert.match(r.stderr, /in\.txt:3: 72 pieces > 64 positions/);
  const none = runCli(['embed', '--model', tiny]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no text to embed/);
});

test('extract: store folder on stdout, a rerun does no forward pass, another model in the same --out exits 2, --shard parts combine', () => {
  const out = join(tempDir(), 'store');
  const cache = { BERT_PROBE_CACHE: join(tempDir(), 'cache') }; // shared by the runs: ONNX graph built once
  const first = runCli(['extract', '--model', tiny, '--data', sample, '--layers', 'all', '--attention', '--out', out], { env: cache });
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.stdout.trim(), out);
  const store = openStore([out]);
  assert.equal(store.numSentences, 5);
  assert.deepEqual(store.layers, [0, 1, 2, 3]);
  assert.deepEqual(store.attentionLayers, [1, 2, 3]);
  assert.deepEqual(store.wordCounts, [7, 4, 3, 7, 3]);
  const again = runCli(['extract', '--model', tiny, '--data', sample, '--layers', '2', '--out', out, '--json'], { env: cache });
  assert.equal(again.status, 0, again.stderr);
  const summary = JSON.parse(again.stdout);
  assert.equal(summary.computedSentences, 0);
  assert.equal(summary.engine, null, 'a complete store starts no engine');
  assert.equal(summary.store, out);
  const other = runCli(['extract', '--model', join(fixturesDir, 'tiny-bert-model-only-f16'), '--data', sample, '--out', out], { env: cache });
  assert.equal(other.status, 2);
  assert.match(other.stderr, /built for another model/);
  assert.match(other.stderr, /index\.json/);
  assert.match(other.stderr, /--force/);
  const parts = [1, 2].map((k) => {
    const dir = join(tempDir(), `part${k}`);
    const r = runCli(['extract', '--model', tiny, '--data', sample, '--layers', '3', '--shard', `${k}/2`, '--out', dir, '--dtype', 'float16'], { env: cache });
    assert.equal(r.status, 0, r.stderr);
    return dir;
  });
  const combined = openStore(parts);
  assert.equal(combined.numSentences, 5);
  assert.deepEqual(JSON.parse(readFileSync(join(parts[0]!, 'index.json'), 'utf8')).sentenceIds, ['ex-1', 'ex-2']);
});

test('--shard K/N parsing', () => {
  assert.deepEqual(parseShard('2/4'), { index: 2, count: 4 });
  for (const bad of ['3/2', '0/2', '1', 'a/b', '1/0']) assert.throws(() => parseShard(bad), /--shard must be K\/N/);
});

test('extract --pieces with a real model: every piece stored; word reads pool them like a word-level store', async () => {
  const cache = { BERT_PROBE_CACHE: join(tempDir(), 'cache') };
  const dirs = ['pieces', 'words'].map((k) => join(tempDir(), k));
  for (const [i, dir] of dirs.entries()) {
    const r = runCli(['extract', '--model', tiny, '--data', sample, '--layers', '0,2', '--out', dir, ...(i === 0 ? ['--pieces'] : [])], { env: cache });
    assert.equal(r.status, 0, r.stderr);
  }
  const [pieces, words] = dirs.map((d) => openStore([d]));
  assert.deepEqual(pieces!.pieceLayers, [0, 2]);
  assert.equal(pieces!.hasPieces, true);
  const all = [...Array(pieces!.numSentences).keys()];
  const got = await pieces!.readPieces(2, all);
  assert.deepEqual(got.pieceCounts, pieces!.pieceCounts);
  assert.ok(got.wordSpans.every((sp, i) => sp.length === pieces!.wordCounts[i] && sp[0]![0] === 1 && sp[sp.length - 1]![1] === got.pieceCounts[i]! - 1));
  const a = await pieces!.readWords(2, all);
  const b = await words!.readWords(2, all);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `value ${i}: ${a[i]} vs ${b[i]}`);
});
