/**
 * scoreSplit / scoreFromPredictions / predictionRecords / scoreRecords (src/probes/structural-eval.ts)
 * on what a run may lack: a depth-only or distance-only probe, no sentences, predictions missing
 * for some sentences, records without distances, and a written root that differs from the argmin.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goldSentence, predictionRecords, scoreFromPredictions, scoreRecords, scoreSplit } from '../src/probes/structural-eval.js';
import { chainDepths, chainDistances } from '../src/probes/trees.js';

// "The old dog barks loudly ." and "Dogs bark ." (two gold trees with punctuation)
const sents = [
  { id: 'a', source: { file: 'x', line: 1 }, words: ['The', 'old', 'dog', 'barks', 'loudly', '.'], heads: [3, 3, 4, 0, 4, 4], xpos: ['DT', 'JJ', 'NN', 'VBZ', 'RB', '.'] },
  { id: 'b', source: { file: 'x', line: 9 }, words: ['Dogs', 'bark', '.'], heads: [2, 0, 2], xpos: ['NNS', 'VBP', '.'] },
];
const gold = sents.map(goldSentence);

test('depth-only and distance-only runs score their own metrics and leave the others null', () => {
  const depthOnly = scoreSplit(gold, undefined, gold.map((g) => chainDepths(g.words.length)));
  assert.equal(depthOnly.scores.uuas, null);
  assert.equal(depthOnly.scores.dspr, null);
  assert.equal(depthOnly.scores.rootAcc, 0, 'the chain roots at word 0; neither gold root is word 0');
  assert.ok(depthOnly.predictions.every((p) => p.edges === undefined && p.distances === undefined && p.root === 0));
  const distOnly = scoreSplit(gold, gold.map((g) => chainDistances(g.words.length)), undefined);
  assert.equal(distOnly.scores.rootAcc, null);
  assert.equal(distOnly.scores.nspr, null);
  // a: chain edges 0-1, 1-2, 2-3, 3-4 vs gold 0-2, 1-2, 2-3, 3-4 → 3 of 4; b: 0-1 of 0-1 → 1 of 1.
  assert.equal(distOnly.scores.uuas, 4 / 5);
  assert.ok(distOnly.predictions.every((p) => p.depths === undefined && p.root === undefined));
  // Records carry only what was predicted.
  const recs = predictionRecords('m', 'layer.1', gold, depthOnly.predictions, true);
  assert.deepEqual(recs.map((r) => Object.keys(r).filter((k) => k.startsWith('predicted_')).sort()), [['predicted_depths', 'predicted_root'], ['predicted_depths', 'predicted_root']]);
  const recs2 = predictionRecords('m', 'layer.1', gold, distOnly.predictions, false);
  assert.deepEqual(recs2.map((r) => Object.keys(r).filter((k) => k.startsWith('predicted_'))), [['predicted_edges'], ['predicted_edges']], 'no distances without saveDistances');
  assert.deepEqual(recs2.map((r) => [r.sentence, r.id, r.layer, r.model]), [[0, 'a', 'layer.1', 'm'], [1, 'b', 'layer.1', 'm']]);
});

test('no sentences, or a metric missing for some sentence: null, not a number', () => {
  assert.deepEqual(scoreFromPredictions([], []), { uuas: null, dspr: null, rootAcc: null, nspr: null });
  const partial = scoreFromPredictions(gold, [{ edges: [[0, 2]], distances: chainDistances(6), depths: chainDepths(6) }, {}]);
  assert.deepEqual(partial, { uuas: null, dspr: null, rootAcc: null, nspr: null });
});

test('a written root is used as written (scoreFromPredictions and scoreRecords)', () => {
  // Depths make word 0 the argmin, but the records say the root is the gold root.
  const preds = gold.map((g) => ({ depths: chainDepths(g.words.length), root: g.root }));
  assert.equal(scoreFromPredictions(gold, preds).rootAcc, 1);
  const recs = predictionRecords('m', 'layer.2', gold, preds, false);
  assert.deepEqual(recs.map((r) => r.predicted_root), [3, 1]);
  assert.equal(scoreRecords(recs).rootAcc, 1);
  // Without a written root the argmin of the depths counts.
  assert.equal(scoreRecords(recs.map(({ predicted_root: _, ...r }) => r)).rootAcc, 0);
});
