/**
 * The structural probe recovers trees that are linearly encoded in word vectors (issue 6,
 * "Must show"): words get vectors h_i = Σ over the edges on the root→i path of one basis vector
 * per edge, so ‖h_i − h_j‖² is the tree distance and ‖h_i‖² the depth; the probe sees them
 * only through a hidden random linear map A (x = A h + small noise) and must learn B ≈ A⁺.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import { batchLossAndGrad, fitStructuralProbe, makeBatch, type ProbeExample } from '../src/probes/structural.js';
import { mulberry32 } from '../src/util/random.js';
import { distanceSpearman, depthSpearman, mstEdges, predictedRoot, rootAccuracy, uuas } from '../src/probes/metrics.js';
import { goldEdges, treeDepths, treeDistances, treeProblem } from '../src/probes/trees.js';

const MAX_LEN = 14;
const HIDDEN = 24;

function randomHeads(n: number, rand: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5);
  const heads = new Array<number>(n).fill(0);
  // Attach each word to one of the 3 words placed just before it: deep trees with few depth ties
  // (ties cap Spearman below 1 even for a perfect probe).
  for (let k = 1; k < n; k++) heads[order[k]!] = order[k - 1 - Math.floor(rand() * Math.min(k, 3))]! + 1;
  return heads;
}

function makeSentence(rand: () => number, A: Float64Array): { heads: number[]; ex: ProbeExample } {
  const n = 5 + Math.floor(rand() * (MAX_LEN - 4));
  const heads = randomHeads(n, rand);
  assert.equal(treeProblem(heads), null);
  const h = new Float64Array(n * MAX_LEN);
  for (let i = 0; i < n; i++) {
    for (let j = i; heads[j]! > 0; j = heads[j]! - 1) h[i * MAX_LEN + j] = 1; // edge j→head(j)
  }
  const vectors = new Float32Array(n * HIDDEN);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < HIDDEN; r++) {
      let v = (rand() - 0.5) * 0.002; // a little noise
      for (let c = 0; c < MAX_LEN; c++) v += A[r * MAX_LEN + c]! * h[i * MAX_LEN + c]!;
      vectors[i * HIDDEN + r] = v;
    }
  }
  return { heads, ex: { n, vectors, distances: treeDistances(heads), depths: treeDepths(heads) } };
}

test('distance and depth probes recover trees hidden by a linear map', async () => {
  const { tf } = await selectTfjsBackend();
  const rand = mulberry32(7);
  const A = new Float64Array(HIDDEN * MAX_LEN).map(() => (rand() - 0.5) * 2);
  const make = (k: number) => Array.from({ length: k }, () => makeSentence(rand, A));
  const train = make(1000);
  const dev = make(60);
  const testSet = make(60);
  const before = tf.memory().numTensors;

  const dist = fitStructuralProbe(tf, train.map((s) => s.ex), dev.map((s) => s.ex), { kind: 'distance', hiddenSize: HIDDEN, seed: 1 });
  const depth = fitStructuralProbe(tf, train.map((s) => s.ex), dev.map((s) => s.ex), { kind: 'depth', hiddenSize: HIDDEN, seed: 1 });
  assert.ok(dist.bestDevLoss < dist.history[0]!.devLoss, 'dev loss went down');
  if (process.env.P6_DEBUG) console.log(dist.epochs, dist.bestDevLoss, depth.epochs, depth.bestDevLoss, depth.history.map((h) => [h.devLoss.toFixed(4), h.learningRate]));

  const scored = testSet.map((s) => {
    const d = dist.probe.distances(s.ex.vectors, s.ex.n);
    const z = depth.probe.depths(s.ex.vectors, s.ex.n);
    return {
      gold: mstEdges(s.ex.distances!, s.ex.n),
      predicted: mstEdges(d, s.ex.n),
      n: s.ex.n,
      d,
      z,
      goldRoot: s.heads.indexOf(0),
      predictedRoot: predictedRoot(z),
      s,
    };
  });
  // With no punctuation the gold MST is the gold tree.
  for (const x of scored) assert.deepEqual(new Set(x.gold.map((e) => e.join())), new Set(goldEdges(x.s.heads).map(([a, b]) => [Math.min(a, b), Math.max(a, b)].join())));
  const u = uuas(scored);
  const dspr = distanceSpearman(scored.map((x) => ({ n: x.n, predicted: x.d, gold: x.s.ex.distances! }))).value;
  const root = rootAccuracy(scored);
  const nspr = depthSpearman(scored.map((x) => ({ predicted: x.z, gold: x.s.ex.depths! }))).value;
  if (process.env.P6_DEBUG) console.log({ u, root, dspr, nspr });
  assert.ok(u >= 0.99, `UUAS ${u}`);
  assert.ok(root >= 0.99, `root accuracy ${root}`);
  assert.ok(dspr >= 0.95, `DSpr ${dspr}`);
  assert.ok(nspr >= 0.95, `NSpr ${nspr}`);

  // Same seed, same probe: training is reproducible.
  const again = fitStructuralProbe(tf, train.slice(0, 40).map((s) => s.ex), dev.slice(0, 20).map((s) => s.ex), { kind: 'depth', hiddenSize: HIDDEN, seed: 3, maxEpochs: 2 });
  const again2 = fitStructuralProbe(tf, train.slice(0, 40).map((s) => s.ex), dev.slice(0, 20).map((s) => s.ex), { kind: 'depth', hiddenSize: HIDDEN, seed: 3, maxEpochs: 2 });
  assert.deepEqual(again.history, again2.history);
  for (const f of [dist, depth, again, again2]) f.probe.dispose();
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

test('batch loss and gradient equal autodiff of a direct per-sentence implementation', async () => {
  const { tf } = await selectTfjsBackend();
  const rand = mulberry32(11);
  const H = 6;
  const R = 4;
  const sents = [[2, 0, 2, 3], [0, 1], [3, 3, 0, 3, 4, 1]].map((heads) => {
    const n = heads.length;
    return { n, vectors: new Float32Array(n * H).map(() => rand() * 2 - 1), distances: treeDistances(heads), depths: treeDepths(heads) };
  });
  const Binit = new Float32Array(H * R).map(() => rand() - 0.5);
  for (const kind of ['distance', 'depth'] as const) {
    const B = tf.variable(tf.tensor2d(Binit, [H, R]));
    const mine = batchLossAndGrad(tf, B as unknown as import('@tensorflow/tfjs').Tensor2D, makeBatch(sents, kind, H), kind, H);
    const ref = tf.variableGrads(() => {
      const losses = sents.map((s) => {
        const t = tf.matMul(tf.tensor2d(s.vectors, [s.n, H]), B);
        if (kind === 'depth') return t.square().sum(1).sub(tf.tensor1d(s.depths)).abs().sum().div(s.n);
        const d = t.expandDims(1).sub(t.expandDims(0)).square().sum(2); // ‖B(h_i − h_j)‖², as probe.py
        return d.sub(tf.tensor2d(s.distances, [s.n, s.n])).abs().sum().div(s.n * s.n);
      });
      return tf.addN(losses).div(sents.length) as import('@tensorflow/tfjs').Scalar;
    }, [B]);
    assert.ok(Math.abs(mine.loss.dataSync()[0]! - ref.value.dataSync()[0]!) < 1e-5, `${kind} loss`);
    const g1 = mine.grad.dataSync();
    const g2 = ref.grads[B.name]!.dataSync();
    for (let i = 0; i < g1.length; i++) assert.ok(Math.abs(g1[i]! - g2[i]!) < 1e-4, `${kind} grad[${i}]: ${g1[i]} vs ${g2[i]}`);
    tf.dispose([mine.loss, mine.grad, ref.value, ...Object.values(ref.grads), B]);
  }
});
