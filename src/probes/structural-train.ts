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
import { mulberry32, shuffled } from '../util/random.js';
import { structuralDepthLoss, structuralDistanceLoss } from './blocks.js';
import type { SplitData } from './contract.js';
import { compileProbe, initParams, type CompiledProbe, type ProbeDefinition } from './probe-model.js';
import { trainProbe, type Batch, type EpochReport, type TrainResult } from './trainer.js';
import { treeDepths, treeDistances } from './trees.js';

export type StructuralKind = 'distance' | 'depth';

/** The probe: parameter proj [hidden, rank]; loss of a batch; output the projections X·proj. */
export function structuralDefinition(kind: StructuralKind, hidden: number, rank: number): ProbeDefinition {
  const pair = kind === 'distance' ? ['b', 'len', 'len'] : ['b', 'len'];
  return {
    name: `structural_${kind}`,
    params: [{ name: 'proj', shape: [hidden, rank], init: { uniform: [-0.05, 0.05] } }],
    inputs: [
      { name: 'x', shape: ['words', hidden] },
      { name: 'rows', shape: ['bl'], type: 'int64' },
      { name: 'positions', shape: ['words'], type: 'int64' },
      { name: 'target', shape: pair },
      { name: 'mask', shape: pair },
      { name: 'norm', shape: ['b'] },
      ...(kind === 'distance' ? [{ name: 'eye', shape: ['len', 'len'] }] : []),
    ],
    build(g, p, i) {
      const inp = { x: i.x!, rows: i.rows!, positions: i.positions!, target: i.target!, mask: i.mask!, norm: i.norm!, ...(i.eye ? { eye: i.eye } : {}) };
      return { loss: (kind === 'distance' ? structuralDistanceLoss : structuralDepthLoss)(g, p.proj!, inp), outputs: { projected: g.matmul(i.x!, p.proj!) } };
    },
  };
}

/** Compiled probes are parameter-free: one per (kind, hidden, rank, device), shared by every layer and model. */
const compiled = new Map<string, Promise<CompiledProbe>>();
export function compiledStructural(kind: StructuralKind, hidden: number, rank: number, device: 'cpu' | 'cuda' = 'cpu', threads?: number): Promise<CompiledProbe> {
  const key = `${kind}/${hidden}/${rank}/${device}/${threads ?? 'all'}`;
  let p = compiled.get(key);
  if (!p) compiled.set(key, (p = compileProbe(structuralDefinition(kind, hidden, rank), { device, ...(threads !== undefined ? { threads } : {}) })));
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
 * One batch's feeds: x [words, hidden] unpadded (as read), `rows` each padded position's row in
 * x (0 for padding, masked), `positions` each word's padded position, target/mask [b, len, len] or [b, len], norm [b], and
 * for the distance probe eye [len, len] (the identity).
 */
export function structuralFeeds(sentences: readonly Sentence[], x: Float32Array, kind: StructuralKind, hidden: number): Batch {
  const b = sentences.length;
  const len = Math.max(...sentences.map((s) => s.words.length));
  const words = x.length / hidden;
  const rows = new BigInt64Array(b * len); // padding reads row 0; the mask zeroes it
  const positions = new BigInt64Array(words);
  const per = kind === 'distance' ? len * len : len;
  const target = new Float32Array(b * per);
  const mask = new Float32Array(b * per);
  const norm = new Float32Array(b);
  let w = 0;
  sentences.forEach((s, k) => {
    const n = s.words.length;
    for (let i = 0; i < n; i++) {
      rows[k * len + i] = BigInt(w + i);
      positions[w + i] = BigInt(k * len + i);
    }
    w += n;
    if (kind === 'distance') {
      const g = cachedTreeDistances(s.heads!);
      for (let i = 0; i < n; i++) {
        const base = k * per + i * len;
        target.set(g.subarray(i * n, (i + 1) * n), base);
        mask.fill(1, base, base + n);
      }
      norm[k] = n * n;
    } else {
      target.set(treeDepths(s.heads!), k * per);
      mask.fill(1, k * per, k * per + n);
      norm[k] = n;
    }
  });
  if (w !== words) throw new Error(`structural batch: ${words} vectors for ${w} words`);
  const shape = kind === 'distance' ? [b, len, len] : [b, len];
  const feeds: Batch['feeds'] = { x: { data: x, dims: [words, hidden] }, rows: { data: rows, dims: [b * len] }, positions: { data: positions, dims: [words] }, target: { data: target, dims: shape }, mask: { data: mask, dims: shape }, norm: { data: norm, dims: [b] } };
  if (kind === 'distance') {
    const eye = new Float32Array(len * len);
    for (let i = 0; i < len; i++) eye[i * len + i] = 1;
    feeds.eye = { data: eye, dims: [len, len] };
  }
  return { count: b, feeds };
}

/** Batches of `size` sentences in the order given, each read when needed (the next one read ahead). */
export async function* streamBatches<T>(split: SplitData, layer: number, order: readonly number[], size: number, make: (sentences: Sentence[], x: Float32Array) => T): AsyncGenerator<T> {
  const starts: number[] = [];
  for (let i = 0; i < order.length; i += size) starts.push(i);
  const read = (i: number) => {
    const idx = order.slice(i, i + size);
    return split.activations.readWords(layer, idx).then((x) => make(idx.map((k) => split.sentences[k]!), x));
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
  // Each batch is read afresh, so its buffers can move to the training worker.
  const make = (s: Sentence[], x: Float32Array): Batch => ({ ...structuralFeeds(s, x, kind, hidden), transfer: true });
  const r = await trainProbe({
    probe,
    params,
    train: () => streamBatches(train, layer, shuffled(trainOrder, shuffleRand), batchSize, make),
    dev: () => streamBatches(dev, layer, devOrder, batchSize, make),
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
