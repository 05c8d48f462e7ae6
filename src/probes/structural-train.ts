/**
 * The structural probe written once (issue 9): Hewitt & Manning 2019's distance and depth probes
 * as ProbeDefinitions over src/probes/blocks.ts's structural L1 losses (Gram form, unpadded X·B
 * then gather), trained by src/probes/trainer.ts trainProbe on batches streamed from the
 * activation source, and predicted in float64 from the projections.
 *
 * Reference: github.com/john-hewitt/structural-probes — probe.py TwoWordPSDProbe (distance,
 * ‖B(h_i − h_j)‖²) and OneWordPSDProbe (depth, ‖Bh_i‖²), B = projᵀ with proj [hidden, rank]
 * initialised uniform(−0.05, 0.05); loss.py L1DistanceLoss / L1DepthLoss (per sentence, sum over
 * real words divided by length² or length, mean over the batch); regimen.py (Adam 0.001,
 * ReduceLROnPlateau ×0.1 patience 0, early stopping after 5 epochs without a 1e-4 gain, ≤ 40
 * epochs, train shuffled every epoch, batches of 20 sentences).
 */
import type { Sentence } from '../corpus/types.js';
import { BufferPool } from '../util/buffer-pool.js';
import { mulberry32, shuffled } from '../util/random.js';
import { structuralDepthLoss, structuralDistanceLoss } from './blocks.js';
import type { SplitData } from './contract.js';
import { compileProbe, initParams, type CompiledProbe, type ProbeDefinition } from './probe-model.js';
import { trainProbe, type Batch, type EpochReport, type TrainResult } from './trainer.js';
import { treeDepths, treeDistances } from './trees.js';

export type StructuralKind = 'distance' | 'depth';

/**
 * Sentence groups a batch is padded in (blocks.ts StructuralInputs): the distance probe's Gram
 * matrices cost length² per sentence, so three groups by length; the depth probe gathers only
 * one norm per word, so one group.
 */
export function defaultGroups(kind: StructuralKind): number {
  return kind === 'distance' ? 3 : 1;
}

/** The probe: parameter proj [hidden, rank]; loss of a batch; output the projections X·proj. */
export function structuralDefinition(kind: StructuralKind, hidden: number, rank: number, groups = defaultGroups(kind)): ProbeDefinition {
  const group = (k: number) => {
    const [b, len] = [`b${k}`, `len${k}`];
    const pair = kind === 'distance' ? [b, len, len] : [b, len];
    return [
      { name: `target${k}`, shape: pair },
      { name: `mask${k}`, shape: pair },
      { name: `norm${k}`, shape: [b] },
      ...(kind === 'distance' ? [{ name: `eye${k}`, shape: [len, len] }] : []),
    ];
  };
  return {
    name: `structural_${kind}`,
    params: [{ name: 'proj', shape: [hidden, rank], init: { uniform: [-0.05, 0.05] } }],
    inputs: [
      { name: 'x', shape: ['words', hidden] },
      { name: 'rows', shape: ['positions'], type: 'int64' },
      { name: 'positions', shape: ['words'], type: 'int64' },
      ...(groups > 1 ? [{ name: 'sizes', shape: [groups], type: 'int64' as const }] : []),
      ...Array.from({ length: groups }, (_, k) => group(k)).flat(),
    ],
    build(g, p, i) {
      const grps = Array.from({ length: groups }, (_, k) => ({ target: i[`target${k}`]!, mask: i[`mask${k}`]!, norm: i[`norm${k}`]!, ...(kind === 'distance' ? { eye: i[`eye${k}`]! } : {}) }));
      const inp = { x: i.x!, rows: i.rows!, positions: i.positions!, ...(i.sizes ? { sizes: i.sizes } : {}), groups: grps };
      return { loss: (kind === 'distance' ? structuralDistanceLoss : structuralDepthLoss)(g, p.proj!, inp), outputs: { projected: g.matmul(i.x!, p.proj!) } };
    },
  };
}

/** Compiled probes are parameter-free: one per (kind, hidden, rank, device), shared by every layer and model. */
const compiled = new Map<string, Promise<CompiledProbe>>();
export function compiledStructural(kind: StructuralKind, hidden: number, rank: number, device: 'cpu' | 'cuda' = 'cpu', threads?: number): Promise<CompiledProbe> {
  const key = `${kind}/${hidden}/${rank}/${device}/${threads ?? 'all'}`;
  let p = compiled.get(key);
  if (!p) compiled.set(key, (p = compileProbe(structuralDefinition(kind, hidden, rank, defaultGroups(kind)), { device, ...(threads !== undefined ? { threads } : {}) })));
  return p;
}

export async function disposeCompiledStructural(): Promise<void> {
  const all = [...compiled.values()];
  compiled.clear();
  for (const p of all) await (await p).dispose();
}

/**
 * Each training sentence's gold distances, computed once: batches are rebuilt every epoch.
 * Uint16 (a path is shorter than the sentence) halves the memory: ~5 MB for PTB's train split.
 */
const goldDistances = new WeakMap<readonly number[], Uint16Array>();
function cachedTreeDistances(heads: readonly number[]): Uint16Array {
  let d = goldDistances.get(heads);
  if (!d) goldDistances.set(heads, (d = Uint16Array.from(treeDistances(heads))));
  return d;
}

/**
 * The sentences of a batch (their lengths, any order) in `groups` groups of consecutive lengths
 * that minimise Σ_g count_g · longest_g² (the padded Gram work; dynamic programming over the
 * sorted lengths). Returns each group's sentence indices, shortest group first; a batch of fewer
 * sentences than groups gives empty groups at the end.
 */
export function lengthGroups(lengths: readonly number[], groups: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const n = order.length;
  const G = Math.min(groups, n);
  // cost[g][j]: the best cost of the first j sorted sentences in g groups; cut[g][j]: where the last group starts.
  const cost = Array.from({ length: G + 1 }, () => new Float64Array(n + 1).fill(Infinity));
  const cut = Array.from({ length: G + 1 }, () => new Int32Array(n + 1));
  cost[0]![0] = 0;
  for (let g = 1; g <= G; g++) {
    for (let j = g; j <= n; j++) {
      const longest = lengths[order[j - 1]!]! ** 2;
      for (let i = g - 1; i < j; i++) {
        const c = cost[g - 1]![i]! + (j - i) * longest;
        if (c < cost[g]![j]!) {
          cost[g]![j] = c;
          cut[g]![j] = i;
        }
      }
    }
  }
  const out: number[][] = [];
  for (let g = G, j = n; g > 0; g--) {
    const i = cut[g]![j]!;
    out.unshift(order.slice(i, j));
    j = i;
  }
  while (out.length < groups) out.push([]);
  return out;
}

/**
 * One batch's feeds (blocks.ts StructuralInputs): x [words, hidden] unpadded (as read), the
 * sentences padded in `groups` length groups (lengthGroups): `rows` each padded position's row in
 * x (0 for padding, masked), `positions` each word's padded position, `sizes` each group's padded
 * positions, and per group target/mask [b_g, len_g, len_g] or [b_g, len_g], norm [b_g]
 * (length² or length, times the batch's sentence count) and for the distance probe eye
 * [len_g, len_g] (the identity). An empty group (a batch smaller than `groups`) holds one masked
 * position of length 1, which adds nothing to the loss or the gradient.
 */
export function structuralFeeds(sentences: readonly Sentence[], x: Float32Array, kind: StructuralKind, hidden: number, groups = defaultGroups(kind)): Batch {
  const b = sentences.length;
  const words = x.length / hidden;
  const firstRow: number[] = [];
  let w = 0;
  for (const s of sentences) {
    firstRow.push(w);
    w += s.words.length;
  }
  if (w !== words) throw new Error(`structural batch: ${words} vectors for ${w} words`);
  const parts = lengthGroups(sentences.map((s) => s.words.length), groups);
  const lens = parts.map((ks) => (ks.length ? Math.max(...ks.map((k) => sentences[k]!.words.length)) : 1));
  const counts = parts.map((ks) => Math.max(ks.length, 1));
  const sizes = parts.map((_, g) => counts[g]! * lens[g]!);
  const rows = new BigInt64Array(sizes.reduce((a, c) => a + c, 0)); // padding reads row 0; the mask zeroes it
  const positions = new BigInt64Array(words);
  const feeds: Batch['feeds'] = { x: { data: x, dims: [words, hidden] }, rows: { data: rows, dims: [rows.length] }, positions: { data: positions, dims: [words] } };
  if (groups > 1) feeds.sizes = { data: BigInt64Array.from(sizes.map(BigInt)), dims: [groups] };
  let offset = 0;
  parts.forEach((ks, g) => {
    const len = lens[g]!;
    const per = kind === 'distance' ? len * len : len;
    const target = new Float32Array(counts[g]! * per);
    const mask = new Float32Array(counts[g]! * per);
    const norm = new Float32Array(counts[g]!).fill(1); // an empty group's one position: masked, norm 1
    ks.forEach((k, slot) => {
      const s = sentences[k]!;
      const n = s.words.length;
      for (let i = 0; i < n; i++) {
        rows[offset + slot * len + i] = BigInt(firstRow[k]! + i);
        positions[firstRow[k]! + i] = BigInt(offset + slot * len + i);
      }
      if (kind === 'distance') {
        const d = cachedTreeDistances(s.heads!);
        for (let i = 0; i < n; i++) {
          const base = slot * per + i * len;
          target.set(d.subarray(i * n, (i + 1) * n), base);
          mask.fill(1, base, base + n);
        }
        norm[slot] = n * n * b;
      } else {
        target.set(treeDepths(s.heads!), slot * per);
        mask.fill(1, slot * per, slot * per + n);
        norm[slot] = n * b;
      }
    });
    const shape = kind === 'distance' ? [counts[g]!, len, len] : [counts[g]!, len];
    feeds[`target${g}`] = { data: target, dims: shape };
    feeds[`mask${g}`] = { data: mask, dims: shape };
    feeds[`norm${g}`] = { data: norm, dims: [counts[g]!] };
    if (kind === 'distance') {
      const eye = new Float32Array(len * len);
      for (let i = 0; i < len; i++) eye[i * len + i] = 1;
      feeds[`eye${g}`] = { data: eye, dims: [len, len] };
    }
    offset += sizes[g]!;
  });
  return { count: b, feeds };
}

/**
 * Batches of `size` sentences in the order given, each read when needed (the next one read
 * ahead), into buffers from `alloc` when given (ActivationSource.readWords).
 */
export async function* streamBatches<T>(split: SplitData, layer: number, order: readonly number[], size: number, make: (sentences: Sentence[], x: Float32Array) => T, alloc?: (bytes: number) => ArrayBuffer): AsyncGenerator<T> {
  const starts: number[] = [];
  for (let i = 0; i < order.length; i += size) starts.push(i);
  const read = (i: number) => {
    const idx = order.slice(i, i + size);
    return split.activations.readWords(layer, idx, alloc).then((x) => make(idx.map((k) => split.sentences[k]!), x));
  };
  let next = starts.length ? read(starts[0]!) : null;
  for (let k = 0; k < starts.length; k++) {
    const cur = await next!;
    next = k + 1 < starts.length ? read(starts[k + 1]!) : null;
    yield cur;
  }
}

export interface StructuralFit extends TrainResult {
  kind: StructuralKind;
  rank: number;
  /** proj [hidden, rank] of the best dev epoch. */
  proj: Float32Array;
  seconds: number;
}

/** Train one probe on split `train` of one layer, keeping the best `dev` epoch (regimen.py). */
export async function fitStructural(opts: {
  kind: StructuralKind;
  layer: number;
  train: SplitData;
  dev: SplitData;
  hidden: number;
  rank: number;
  seed: number;
  maxEpochs: number;
  batchSize: number;
  device?: 'cpu' | 'cuda';
  /** onnxruntime intra-op threads of the compiled probe (default: all cores). */
  threads?: number;
  onEpoch?: (e: EpochReport) => void;
}): Promise<StructuralFit> {
  const t0 = performance.now();
  const { kind, layer, train, dev, hidden, rank, batchSize } = opts;
  if (train.sentences.length === 0 || dev.sentences.length === 0) throw new Error('structural probe: empty train or dev set');
  const probe = await compiledStructural(kind, hidden, rank, opts.device, opts.threads);
  const def = probe.definition;
  const params = initParams(def, opts.seed);
  // The reference's per-epoch order: the train sentences shuffled each epoch from one stream.
  const shuffleRand = mulberry32(opts.seed ^ 0x5bd1e995);
  const trainOrder = train.sentences.map((_, i) => i);
  // The dev loss is a mean of per-sentence losses, so batch composition does not change it:
  // batching dev sentences by length only saves padding.
  const devOrder = dev.sentences.map((_, i) => i).sort((a, b) => dev.sentences[a]!.words.length - dev.sentences[b]!.words.length);
  // Each batch's feeds are built afresh, so their buffers can move to the training worker; the
  // vectors' buffer comes back and holds a later batch.
  const pool = new BufferPool();
  const make = (s: Sentence[], x: Float32Array): Batch => ({ ...structuralFeeds(s, x, kind, hidden), transfer: true, recycle: { feeds: ['x'], give: pool.give } });
  const r = await trainProbe({
    probe,
    params,
    train: () => streamBatches(train, layer, shuffled(trainOrder, shuffleRand), batchSize, make, pool.take),
    dev: () => streamBatches(dev, layer, devOrder, batchSize, make, pool.take),
    learningRate: 0.001,
    maxEpochs: opts.maxEpochs,
    seed: opts.seed,
    ...(opts.onEpoch ? { onEpoch: opts.onEpoch } : {}),
  });
  return { ...r, kind, rank, proj: params[0]!, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Predicted squared distances n × n (distance) or depths n (depth) for each sentence of a split,
 * computed in float64 from the float32 projections X·proj: Σ_k (t_ik − t_jk)², so the matrix is
 * exactly symmetric with a zero diagonal.
 */
export async function predictStructural(kind: StructuralKind, proj: Float32Array, split: SplitData, layer: number, hidden: number, rank: number, batchSize: number, device?: 'cpu' | 'cuda', threads?: number): Promise<Float64Array[]> {
  const probe = await compiledStructural(kind, hidden, rank, device, threads);
  const out: Float64Array[] = [];
  const order = split.sentences.map((_, i) => i);
  for await (const { sentences, x } of streamBatches(split, layer, order, batchSize, (sentences, x) => ({ sentences, x }))) {
    const feeds = structuralFeeds(sentences, x, kind, hidden).feeds;
    const t = (await probe.predict([proj], feeds)).projected!.data;
    let w = 0;
    for (const s of sentences) {
      const n = s.words.length;
      out.push(kind === 'distance' ? pairwise(t, w, n, rank) : norms(t, w, n, rank));
      w += n;
    }
  }
  return out;
}

function pairwise(t: Float32Array, w: number, n: number, r: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = (w + i) * r;
    for (let j = i + 1; j < n; j++) {
      const b = (w + j) * r;
      let d = 0;
      for (let k = 0; k < r; k++) {
        const v = t[a + k]! - t[b + k]!;
        d += v * v;
      }
      out[i * n + j] = d;
      out[j * n + i] = d;
    }
  }
  return out;
}

function norms(t: Float32Array, w: number, n: number, r: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = (w + i) * r;
    let d = 0;
    for (let k = 0; k < r; k++) d += t[a + k]! * t[a + k]!;
    out[i] = d;
  }
  return out;
}
