/**
 * The structural probe recovers trees that are linearly encoded in word vectors (issue 6,
 * "Must show"): words get vectors h_i = Σ over the edges on the root→i path of one basis vector
 * per edge, so ‖h_i − h_j‖² is the tree distance and ‖h_i‖² the depth; the probe sees them
 * only through a hidden random linear map A (x = A h + small noise) and must learn B ≈ A⁺.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import { memorySource } from '../src/extract/memory-source.js';
import type { SplitData } from '../src/probes/contract.js';
import { compiledStructural, disposeCompiledStructural, fitStructural, predictStructural, structuralFeeds } from '../src/probes/structural-train.js';
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

interface Planted {
  heads: number[];
  vectors: Float32Array;
  distances: Float32Array;
  depths: Float32Array;
}

function makeSentence(rand: () => number, A: Float64Array): Planted {
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
  return { heads, vectors, distances: treeDistances(heads), depths: treeDepths(heads) };
}

/** A split of planted sentences at layer 0 of an in-memory source. */
function split(name: SplitData['name'], items: readonly Planted[]): SplitData {
  const sentences: Sentence[] = items.map((x, i) => ({ id: `${name}-${i}`, source: { file: 'planted', line: i + 1 }, words: x.heads.map((_, k) => `w${k}`), heads: x.heads }));
  return { name, sentences, activations: memorySource(new Map([[0, items.map((x) => x.vectors)]]), HIDDEN) };
}

test('distance and depth probes recover trees hidden by a linear map', async () => {
  const rand = mulberry32(7);
  const A = new Float64Array(HIDDEN * MAX_LEN).map(() => (rand() - 0.5) * 2);
  const make = (k: number) => Array.from({ length: k }, () => makeSentence(rand, A));
  const train = split('train', make(1000));
  const devItems = make(60);
  const dev = split('dev', devItems);
  const testItems = make(60);
  const testSplit = split('test', testItems);
  const common = { layer: 0, train, dev, hidden: HIDDEN, rank: HIDDEN, seed: 1, maxEpochs: 40, batchSize: 20 };
  const dist = await fitStructural({ ...common, kind: 'distance' });
  const depth = await fitStructural({ ...common, kind: 'depth' });
  assert.ok(dist.bestDevLoss < dist.history[0]!.devLoss, 'dev loss went down');
  const d = await predictStructural('distance', dist.proj, testSplit, 0, HIDDEN, HIDDEN, 20);
  const z = await predictStructural('depth', depth.proj, testSplit, 0, HIDDEN, HIDDEN, 20);

  const scored = testItems.map((s, k) => {
    const n = s.heads.length;
    return { gold: mstEdges(s.distances, n), predicted: mstEdges(d[k]!, n), n, d: d[k]!, z: z[k]!, goldRoot: s.heads.indexOf(0), predictedRoot: predictedRoot(z[k]!), s };
  });
  // With no punctuation the gold MST is the gold tree.
  for (const x of scored) assert.deepEqual(new Set(x.gold.map((e) => e.join())), new Set(goldEdges(x.s.heads).map(([a, b]) => [Math.min(a, b), Math.max(a, b)].join())));
  const u = uuas(scored);
  const dspr = distanceSpearman(scored.map((x) => ({ n: x.n, predicted: x.d, gold: x.s.distances }))).value;
  const root = rootAccuracy(scored);
  const nspr = depthSpearman(scored.map((x) => ({ predicted: x.z, gold: x.s.depths }))).value;
  assert.ok(u >= 0.99, `UUAS ${u}`);
  assert.ok(root >= 0.99, `root accuracy ${root}`);
  assert.ok(dspr >= 0.95, `DSpr ${dspr}`);
  assert.ok(nspr >= 0.95, `NSpr ${nspr}`);
  // A predicted distance matrix is symmetric with a zero diagonal.
  const m = d[0]!;
  const n = testItems[0]!.heads.length;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) assert.equal(m[i * n + j], m[j * n + i]);

  // Same seed, same probe: training is reproducible.
  const small = { ...common, train: split('train', make(40)), dev: split('dev', make(20)), seed: 3, maxEpochs: 2, kind: 'depth' as const };
  const again = await fitStructural(small);
  const again2 = await fitStructural(small);
  assert.deepEqual(again.history, again2.history);
  assert.deepEqual(again.proj, again2.proj);
  await disposeCompiledStructural();
});

test("a batch's loss is Hewitt & Manning's per-sentence L1 loss (probe.py differences form), mean over sentences", async () => {
  const rand = mulberry32(11);
  const H = 6;
  const R = 4;
  const heads = [[2, 0, 2, 3], [0, 1], [3, 3, 0, 3, 4, 1]];
  const sentences: Sentence[] = heads.map((h, i) => ({ id: `s${i}`, source: { file: 't', line: i + 1 }, words: h.map((_, k) => `w${k}`), heads: h }));
  const vectors = heads.map((h) => new Float32Array(h.length * H).map(() => rand() * 2 - 1));
  const x = new Float32Array(vectors.reduce((a, v) => a + v.length, 0));
  vectors.reduce((at, v) => (x.set(v, at), at + v.length), 0);
  const proj = new Float32Array(H * R).map(() => rand() - 0.5);
  for (const kind of ['distance', 'depth'] as const) {
    const probe = await compiledStructural(kind, H, R);
    const got = await probe.loss([proj], structuralFeeds(sentences, x, kind, H).feeds);
    // Direct float64: t = h·proj per word; distance ‖t_i − t_j‖², depth ‖t_i‖².
    let want = 0;
    heads.forEach((h, s) => {
      const n = h.length;
      const t = Array.from({ length: n }, (_, i) => Array.from({ length: R }, (_, r) => {
        let v = 0;
        for (let k = 0; k < H; k++) v += vectors[s]![i * H + k]! * proj[k * R + r]!;
        return v;
      }));
      let sum = 0;
      if (kind === 'distance') {
        const g = treeDistances(h);
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sum += Math.abs(t[i]!.reduce((a, v, r) => a + (v - t[j]![r]!) ** 2, 0) - g[i * n + j]!);
        want += sum / (n * n);
      } else {
        const g = treeDepths(h);
        for (let i = 0; i < n; i++) sum += Math.abs(t[i]!.reduce((a, v) => a + v * v, 0) - g[i]!);
        want += sum / n;
      }
    });
    want /= heads.length;
    assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, want), `${kind} loss ${got} vs ${want}`);
  }
  await disposeCompiledStructural();
});
