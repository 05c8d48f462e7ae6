/**
 * Issue 10's scoring, by hand: edge-probing targets from each corpus kind, micro-F1 over
 * (target, label) decisions (SRL's core+ARGM filter), Δ and the expected layer (not clipped,
 * from ℓ = 1), the mix's centre of gravity, control labels as a function of the word type only,
 * and MDL's online codelength in bits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import { controlLabels, labelDistribution } from '../src/probes/control-tasks.js';
import { centerOfGravity, differentials, expectedLayer, microF1, mixWeights, perLabel } from '../src/probes/edge-scores.js';
import { labelInventory, scoredLabel, targetsOf } from '../src/probes/edge-targets.js';
import { blockEnds, MDL_FRACTIONS, onlineCodelength } from '../src/probes/mdl.js';

const close = (a: number | null, b: number, msg?: string) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${msg ?? ''} ${a} vs ${b}`);

const sent: Sentence = {
  id: 's1',
  source: { file: 'f', line: 1 },
  words: ['John', 'saw', 'Mary', 'Smith', '.'],
  upos: ['PROPN', 'VERB', 'PROPN', 'PROPN', 'PUNCT'],
  heads: [2, 0, 2, 3, 2],
  deprels: ['nsubj', 'root', 'obj', 'flat', 'punct'],
  entities: [{ start: 0, end: 1, label: 'PER' }, { start: 2, end: 4, label: 'PER' }],
  srl: [{ predicate: 1, sense: 'see.01', args: [{ start: 0, end: 1, label: 'ARG0' }, { start: 2, end: 3, label: 'ARG1' }, { start: 2, end: 3, label: 'R-ARG1' }] }],
};

test('targets: pos per word, ner per entity, srl predicate→argument (labels merged), deps dependent→head with ROOT to itself', () => {
  assert.deepEqual(targetsOf('pos', sent).map((t) => [t.span1, t.labels]), [[[0, 1], ['PROPN']], [[1, 2], ['VERB']], [[2, 3], ['PROPN']], [[3, 4], ['PROPN']], [[4, 5], ['PUNCT']]]);
  assert.deepEqual(targetsOf('ner', sent), [{ span1: [0, 1], labels: ['PER'] }, { span1: [2, 4], labels: ['PER'] }]);
  assert.deepEqual(targetsOf('srl', sent), [
    { span1: [1, 2], span2: [0, 1], labels: ['ARG0'] },
    { span1: [1, 2], span2: [2, 3], labels: ['ARG1', 'R-ARG1'] },
  ]);
  const deps = targetsOf('deps', sent);
  assert.deepEqual(deps[1], { span1: [1, 2], span2: [1, 2], labels: ['root'] });
  assert.deepEqual(deps[3], { span1: [3, 4], span2: [2, 3], labels: ['flat'] });
  assert.deepEqual(labelInventory([targetsOf('deps', sent)]), ['flat', 'nsubj', 'obj', 'punct', 'root']);
});

test('micro-F1 over (target, label) decisions equals hand counts; SRL keeps core and ARGM roles only', () => {
  // TP: A (1st), B (2nd) = 2; FP: C (2nd), D (3rd) = 2; FN: A (2nd) = 1
  // P = 2/4, R = 2/3, F1 = 2·(1/2)(2/3)/(1/2 + 2/3) = 4/7
  const items = [{ gold: ['A'], predicted: ['A'] }, { gold: ['A', 'B'], predicted: ['B', 'C'] }, { gold: [], predicted: ['D'] }];
  const s = microF1(items);
  assert.deepEqual([s.tp, s.fp, s.fn], [2, 2, 1]);
  close(s.f1, 4 / 7);
  const per = perLabel(items);
  assert.deepEqual([...per.keys()], ['A', 'B', 'C', 'D']);
  close(per.get('A')!.recall, 1 / 2);
  close(per.get('A')!.precision, 1);
  // SRL: R-ARG1 and C-ARG0 do not count; ARGM-TMP and ARGA do
  const srl = microF1([{ gold: ['ARG1', 'R-ARG1', 'ARGM-TMP'], predicted: ['ARG1', 'C-ARG0', 'ARGA'] }], scoredLabel('srl'));
  assert.deepEqual([srl.tp, srl.fp, srl.fn], [1, 1, 1]);
  assert.equal(microF1([{ gold: ['R-ARG0'], predicted: [] }], scoredLabel('srl')).f1, null, 'nothing scored');
});

test('expected layer: Δ from P(−1) = 0, summed from ℓ = 1, negative Δ kept; centre of gravity from ℓ = 0', () => {
  const P = [0.5, 0.6, 0.9, 0.9];
  assert.deepEqual(differentials(P).map((d) => Number(d.toFixed(12))), [0.5, 0.1, 0.3, 0]);
  close(expectedLayer(P), (1 * 0.1 + 2 * 0.3 + 3 * 0) / 0.4);
  // a drop: Δ(1) = 0.2, Δ(2) = −0.1 → (1·0.2 − 2·0.1) / 0.1 = 0 (clipping would give 1)
  close(expectedLayer([0.5, 0.7, 0.6]), 0);
  close(centerOfGravity([0.25, 0.25, 0.5]), 1.25);
  const s = mixWeights([0, Math.log(3)]);
  close(s[1]!, 0.75);
});

test('control labels depend on the word type only, repeat with the seed, and follow the training distribution', () => {
  const dist = labelDistribution(['N', 'N', 'N', 'V']);
  assert.deepEqual(dist, [['N', 0.75], ['V', 0.25]]);
  const types = Array.from({ length: 4000 }, (_, i) => `w${i}`);
  const a = controlLabels([...types, ...types.slice(0, 100)], dist, 3);
  const b = controlLabels(types, dist, 3);
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort(), 'a repeated type changes nothing; same seed, same labels');
  const c = controlLabels(types, dist, 4);
  assert.notDeepEqual([...c.values()], [...b.values()]);
  const nShare = [...b.values()].filter((l) => l === 'N').length / types.length;
  assert.ok(Math.abs(nShare - 0.75) < 0.03, `N share ${nShare}`);
});

test('MDL online codelength in bits equals hand computation', () => {
  assert.deepEqual(blockEnds(1000), [1, 2, 4, 8, 16, 32, 62, 125, 250, 500, 1000]);
  assert.equal(MDL_FRACTIONS.length, 11);
  // 1.5 bits per example in every block after the first (given in nats), K = 4 classes:
  // online = t_1·log2 4 + (1000 − 1)·1.5 = 2 + 1498.5; uniform = 1000·2
  const ends = blockEnds(1000);
  const nats = ends.slice(1).map((t, i) => (t - ends[i]!) * 1.5 * Math.LN2);
  const c = onlineCodelength(1000, 4, ends, nats);
  close(c.onlineBits, 2 + 999 * 1.5);
  close(c.uniformBits, 2000);
  close(c.compression, 2000 / 1500.5);
  assert.throws(() => onlineCodelength(1000, 4, ends, nats.slice(1)), /10 block codelengths|expected 10/);
});
