/** Structural-probe metrics and gold trees on small hand-computed cases (issue 6). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  averageRanks,
  depthSpearman,
  distanceSpearman,
  isPunct,
  mstEdges,
  predictedRoot,
  punctMask,
  rootAccuracy,
  spearman,
  uuas,
} from '../src/probes/metrics.js';
import { chainDepths, chainDistances, goldEdges, treeDepths, treeDistances, treeProblem } from '../src/probes/trees.js';

// "The old dog barks loudly ." — The→dog, old→dog, dog→barks, barks=root, loudly→barks, .→barks
const HEADS = [3, 3, 4, 0, 4, 4];
const XPOS = ['DT', 'JJ', 'NN', 'VBZ', 'RB', '.'];

test('tree distances and depths from heads', () => {
  const d = treeDistances(HEADS);
  const row = (i: number) => [...d.subarray(i * 6, i * 6 + 6)];
  assert.deepEqual(row(0), [0, 2, 1, 2, 3, 3]);
  assert.deepEqual(row(3), [2, 2, 1, 0, 1, 1]);
  assert.deepEqual([...treeDepths(HEADS)], [2, 2, 1, 0, 1, 1]);
  assert.deepEqual(goldEdges(HEADS), [[0, 2], [1, 2], [2, 3], [4, 3], [5, 3]]);
  assert.deepEqual([...chainDistances(3)], [0, 1, 2, 1, 0, 1, 2, 1, 0]);
  assert.deepEqual([...chainDepths(3)], [0, 1, 2]);
});

test('treeProblem rejects what is not a single-rooted tree', () => {
  assert.equal(treeProblem(HEADS), null);
  assert.match(treeProblem([0, 0])!, /2 words have head 0/);
  assert.match(treeProblem([2, 3, 2, 0])!, /cycle/);
  assert.match(treeProblem([0, 5])!, /outside 0\.\.2/);
  assert.match(treeProblem([1])!, /own head/);
});

test('MST: ties broken in row-major pair order, punctuation never in the tree', () => {
  // All distances equal: Kruskal takes (0,1), then (0,2).
  assert.deepEqual(mstEdges([0, 1, 1, 1, 0, 1, 1, 1, 0], 3), [[0, 1], [0, 2]]);
  // Word 1 is punctuation: it gets no edge even though it is everyone's nearest neighbour.
  const d = [0, 0.1, 5, 0.1, 0, 0.1, 5, 0.1, 0];
  assert.deepEqual(mstEdges(d, 3), [[0, 1], [1, 2]]);
  assert.deepEqual(mstEdges(d, 3, [false, true, false]), [[0, 2]]);
  // Gold MST of the example without the final '.': the tree's other edges.
  const punct = punctMask(6, XPOS);
  assert.deepEqual(punct, [false, false, false, false, false, true]);
  const gold = mstEdges(treeDistances(HEADS), 6, punct);
  assert.deepEqual(new Set(gold.map((e) => e.join())), new Set(['0,2', '1,2', '2,3', '3,4']));
});

test('punctuation: the PTB tags of the reference code and UPOS PUNCT', () => {
  for (const t of ["''", ',', '.', ':', '``', '-LRB-', '-RRB-']) assert.ok(isPunct(t, undefined), t);
  for (const t of ['HYPH', 'NFP', '$', '#', 'NN']) assert.ok(!isPunct(t, undefined), t);
  assert.ok(isPunct('HYPH', 'PUNCT'));
  assert.ok(!isPunct(undefined, 'SYM'));
});

test('UUAS is one ratio over all gold edges of the split', () => {
  const v = uuas([
    { gold: [[0, 1], [1, 2]], predicted: [[1, 0], [0, 2]] }, // 1 of 2 (undirected match)
    { gold: [[0, 1], [1, 2], [2, 3], [3, 4]], predicted: [[0, 1], [1, 2], [2, 3], [3, 4]] }, // 4 of 4
  ]);
  assert.equal(v, 5 / 6); // not the mean of 1/2 and 1
});

test('Spearman with ties uses average ranks (scipy.stats.spearmanr)', () => {
  assert.deepEqual([...averageRanks([10, 20, 20, 30])], [1, 2.5, 2.5, 4]);
  assert.ok(Math.abs(spearman([1, 2, 2, 3], [1, 2, 3, 4]) - 4.5 / Math.sqrt(22.5)) < 1e-12);
  assert.equal(spearman([3, 2, 1], [1, 2, 3]), -1);
  assert.ok(Number.isNaN(spearman([1, 1, 1], [1, 2, 3])));
});

test('NSpr/DSpr: mean within each length, then over lengths 5–50 only', () => {
  const up = (n: number) => Array.from({ length: n }, (_, i) => i);
  const down = (n: number) => up(n).reverse();
  const r = depthSpearman([
    { predicted: up(5), gold: up(5) }, // length 5: +1
    { predicted: down(5), gold: up(5) }, // length 5: −1  → length-5 mean 0
    { predicted: up(6), gold: up(6) }, // length 6: +1
    { predicted: down(4), gold: up(4) }, // length 4: outside 5–50
    { predicted: down(51), gold: up(51) }, // length 51: outside 5–50
  ]);
  assert.equal(r.value, 0.5); // (0 + 1) / 2, not (1 − 1 + 1) / 3
  assert.deepEqual(r.perLength, { 4: -1, 5: 0, 6: 1, 51: -1 });
  // A constant prediction has no Spearman: left out and counted.
  const c = depthSpearman([{ predicted: [1, 1, 1, 1, 1], gold: up(5) }, { predicted: up(5), gold: up(5) }]);
  assert.equal(c.value, 1);
  assert.equal(c.undefinedCount, 1);
  // DSpr: every word's row; gold distances against themselves give 1.
  const g = treeDistances(HEADS);
  assert.equal(distanceSpearman([{ n: 6, predicted: g, gold: g }]).value, 1);
  assert.ok(Number.isNaN(distanceSpearman([{ n: 3, predicted: chainDistances(3), gold: chainDistances(3) }]).value), 'no length in 5–50');
});

test('root accuracy: smallest predicted depth among non-punctuation, first on ties', () => {
  const punct = punctMask(6, XPOS);
  assert.equal(predictedRoot([3, 2, 1, 0.5, 2, 0.1], punct), 3); // '.' is lower but excluded
  assert.equal(predictedRoot([1, 0.5, 0.5, 2], undefined), 1); // tie → first
  assert.equal(predictedRoot([1, 2], [true, true]), 0); // all punctuation → plain argmin
  assert.equal(rootAccuracy([{ goldRoot: 3, predictedRoot: 3 }, { goldRoot: 1, predictedRoot: 0 }]), 0.5);
});

test('edge cases: empty inputs, mismatched lengths, exact treeProblem messages', () => {
  assert.equal(predictedRoot([], []), -1, 'no words, no root');
  assert.ok(Number.isNaN(rootAccuracy([])));
  assert.throws(() => spearman([1, 2], [1, 2, 3]), /pearson: lengths differ \(2 vs 3\)/);
  assert.equal(treeProblem([]), 'sentence has no words');
  assert.equal(treeProblem([0, 5]), 'word 2 has head 5, outside 0..2');
  assert.equal(treeProblem([0, -1]), 'word 2 has head -1, outside 0..2');
  assert.equal(treeProblem([0, 1.5]), 'word 2 has head 1.5, outside 0..2');
  assert.equal(treeProblem([0, 2]), 'word 2 is its own head');
  // Cycles found wherever they are, including through the first word.
  assert.equal(treeProblem([3, 0, 1]), 'heads form a cycle through word 1');
  assert.equal(treeProblem([0, 3, 2]), 'heads form a cycle through word 2');
  assert.equal(treeProblem([0, 1, 4, 3]), 'heads form a cycle through word 3');
  assert.equal(treeProblem([2, 0, 4, 5, 3]), 'heads form a cycle through word 3');
  assert.equal(treeProblem([2, 3, 0, 3, 4]), null);
});
