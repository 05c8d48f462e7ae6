/**
 * Sentence vectors and `bert-probe similar` (issue 13): bert-as-service pooling against the
 * fixture reference pooled by hand, purity@k and nearest neighbours on a tiny corpus whose
 * answers are known, the cached index reused, and the CLI end to end.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { createEngine } from '../src/model/engine.js';
import { readSafetensors } from '../src/model/safetensors.js';
import type { Engine, LoadedModel } from '../src/model/types.js';
import { normalizeRows, poolSentence, purityAtK, sentenceVectors, topKCosine } from '../src/probes/sentence-vectors.js';
import { fixtureModel, reference } from './engine-fixtures.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

let model: LoadedModel;
let engine: Engine;
before(async () => {
  model = await fixtureModel('tiny-bert');
  engine = await createEngine(model, { engine: 'onnx' });
});
after(async () => engine.dispose());

test('poolSentence: masked mean with the 1e-10 guard, masked max, mean-max, cls (hand values)', () => {
  const states = Float32Array.from([1, 2, 3, -4, 5, 6, 100, 100]); // T=4, H=2; last row padding
  const mask = [1, 1, 1, 0];
  const out = new Float32Array(4);
  poolSentence(states, 4, 2, mask, 'mean', out);
  assert.ok(Math.abs(out[0]! - 3) < 1e-6 && Math.abs(out[1]! - 4 / 3) < 1e-6);
  poolSentence(states, 4, 2, mask, 'max', out);
  assert.deepEqual([...out.subarray(0, 2)], [5, 6]);
  poolSentence(states, 4, 2, mask, 'mean-max', out);
  assert.deepEqual([...out].map((v) => Number(v.toFixed(5))), [3, 1.33333, 5, 6]);
  poolSentence(states, 4, 2, mask, 'cls', out);
  assert.deepEqual([...out.subarray(0, 2)], [1, 2]);
});

test('the default sentence vector (layer −2, [CLS]/[SEP] included) equals the fixture reference pooled by hand', async () => {
  const ref = reference('tiny-bert-reference.safetensors');
  const { batch } = ref;
  const sentences = readSafetensors(join(fixturesDir, 'tiny-bert-reference.safetensors')).metadata.sentences!;
  const texts = JSON.parse(sentences) as string[];
  const L = model.config.numHiddenLayers;
  const H = model.config.hiddenSize;
  const vecs = await sentenceVectors(engine, model, texts, { layers: [L - 1], pooling: 'mean', excludeSpecial: false, batchSize: 4 });
  const hs = ref.tensors.get(`hidden_states.${L - 1}`)!;
  const T = batch.seqLen;
  texts.forEach((_, b) => {
    const want = new Float64Array(H);
    let n = 0;
    for (let t = 0; t < T; t++) {
      if (!batch.attentionMask[b * T + t]) continue;
      n++;
      for (let h = 0; h < H; h++) want[h] += hs.data[(b * T + t) * H + h]!;
    }
    for (let h = 0; h < H; h++) assert.ok(Math.abs(vecs.get(L - 1)![b * H + h]! - want[h]! / n) < 1e-4, `sentence ${b} dim ${h}`);
  });
});

test('topKCosine and purity@k on vectors with known neighbours', () => {
  // 2-D unit vectors at angles 0°, 10°, 20° (label a) and 90°, 100° (label b)
  const deg = [0, 10, 20, 90, 100];
  const idx = normalizeRows(Float32Array.from(deg.flatMap((d) => [Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180)])), 2);
  const labels = ['a', 'a', 'a', 'b', 'b'];
  assert.deepEqual(topKCosine(idx, 2, idx.subarray(0, 2), 2, 0).map((n) => n.row), [1, 2]);
  assert.deepEqual(topKCosine(idx, 2, idx.subarray(6, 8), 2, 3).map((n) => n.row), [4, 2]);
  // k = 2: rows 0,1,2 → both neighbours a (1); row 3 → [4 (b), 2 (a)] = 1/2; row 4 → [3 (b), 2 (a)] = 1/2
  assert.ok(Math.abs(purityAtK(idx, 2, labels, [0, 1, 2, 3, 4], 2) - (3 + 0.5 + 0.5) / 5) < 1e-12);
});

test('similar through the CLI: an exact copy of a corpus sentence is its own nearest neighbour; the index is reused', () => {
  const dir = tempDir();
  const corpus = join(dir, 'tiny.csv');
  const lines = ['text,label', 'the cat and the dogs are pets .,animals', 'he died in a prison cell .,crime', 'the blood cell samples were contaminated .,science', 'fair is fair .,other', 'the dogs are pets and the cat too .,animals', 'a man died in a cell .,crime'];
  writeFileSync(corpus, lines.join('\n') + '\n');
  const home = tempDir('bert-probe-home-');
  const env = { BERT_PROBE_CACHE: join(home, 'cache') };
  const args = ['similar', '--data', corpus, '--model', join(fixturesDir, 'tiny-bert'), '--layers', 'all', '-k', '2', '--eval-queries', '6'];
  const r = runCli([...args, 'he died in a prison cell .', '--out', join(dir, 'a'), '--json'], { env });
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(summary.purity), ['layer.0', 'layer.1', 'layer.2', 'layer.3']);
  const rows = parse(readFileSync(join(dir, 'a', 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  for (const layer of ['layer.0', 'layer.1', 'layer.2', 'layer.3']) {
    const top = rows.find((x) => x.layer === layer && x.rank === '1')!;
    assert.equal(top.text, 'he died in a prison cell .', layer);
    assert.ok(Math.abs(Number(top.score) - 1) < 1e-5, `${layer}: cosine with itself ${top.score}`);
  }
  assert.ok(existsSync(join(dir, 'a', 'purity.csv')));
  // purity recomputed from the table is what the summary says
  const purity = parse(readFileSync(join(dir, 'a', 'purity.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  for (const p of purity) assert.equal(Number(p.purity), summary.purity[p.layer]);
  const again = runCli([...args, '--out', join(dir, 'b')], { env });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /index reused/);
});

test('similar --data polarity through the mirror: labelled neighbours and purity@k per layer', () => {
  const out = join(tempDir(), 'pol');
  const r = runCli(['similar', '--data', 'polarity', '--limit', '400', '--layers', '-2,-1', '--model', join(fixturesDir, 'tiny-bert'), '-k', '5', '--eval-queries', '50', 'a gripping, beautifully acted film', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(summary.purity), ['layer.2', 'layer.3']);
  const rows = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, 10, 'top 5 at two layers');
  for (const row of rows) assert.ok(row.label === 'pos' || row.label === 'neg', row.label);
});
