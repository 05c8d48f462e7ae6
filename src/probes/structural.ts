/**
 * The structural probe of Hewitt & Manning 2019 ("A Structural Probe for Finding Syntax in Word
 * Representations", NAACL), as their reference code implements it
 * (github.com/john-hewitt/structural-probes, structural-probes/probe.py TwoWordPSDProbe and
 * OneWordPSDProbe, loss.py L1DistanceLoss and L1DepthLoss):
 * - distance probe: d_B(h_i, h_j) = ‖B(h_i − h_j)‖², trained so that it matches the tree
 *   distance between words i and j;
 * - depth probe: ‖B h_i‖², trained to match the depth of word i;
 * - B has `rank` rows (default: the hidden size), initialised uniform(−0.05, 0.05);
 * - loss: L1 between predicted and gold values over the real (unpadded) words, each sentence's
 *   sum divided by its length² (distance) or length (depth), averaged over the batch.
 * Optimisation is trainer.ts (Adam 0.001, ×0.1 on dev plateau, early stopping, ≤ 40 epochs).
 *
 * Where the batch loss and its gradient are computed: by onnxruntime (structural-onnx.ts)
 * unless tfjs runs on its native tensorflow backend (tfjs-node, CUDA). Measured on a 2-core
 * machine, tfjs's wasm backend multiplies matrices at ~1.5 GFLOP/s and onnxruntime at ~130;
 * the same math, Adam (tfjs), batches and seeds either way. `backend` in the options forces one.
 */
import type * as TfTypes from '@tensorflow/tfjs';
import { ONNX_PROBE_BACKEND, StructuralOnnxStep, structuralOnnxAvailable } from './structural-onnx.js';
import { mulberry32, shuffled } from '../util/random.js';
import { trainWithEarlyStopping, type EpochReport, type Tf, type TrainResult } from './trainer.js';

type Tensor = TfTypes.Tensor;
type Tensor2D = TfTypes.Tensor2D;
type Tensor3D = TfTypes.Tensor3D;
type Variable = TfTypes.Variable;
type Scalar = TfTypes.Scalar;

export type StructuralKind = 'distance' | 'depth';

/** One sentence for the probe: its word vectors and (for training and scoring) gold targets. */
export interface ProbeExample {
  /** Number of words. */
  n: number;
  /** n × hidden, row-major. */
  vectors: Float32Array;
  /** n × n tree distances (distance probe). */
  distances?: Float32Array;
  /** n tree depths (depth probe). */
  depths?: Float32Array;
}

export interface StructuralProbeOptions {
  kind: StructuralKind;
  hiddenSize: number;
  /** Rows of B; default the hidden size (the paper's full-rank probe). */
  rank?: number;
  seed: number;
  /** Sentences per batch (reference: 20). */
  batchSize?: number;
  maxEpochs?: number;
  learningRate?: number;
  onEpoch?: (e: EpochReport) => void;
  /** Who computes the loss and gradient: default structuralProbeBackend(tf). */
  backend?: StructuralBackend;
}

/** 'onnx': onnxruntime computes each batch's loss and dL/dB; 'tfjs': the active tfjs backend. */
export type StructuralBackend = 'onnx' | 'tfjs';

/**
 * The default: tfjs when it runs on its native tensorflow backend (tfjs-node, CUDA), else
 * onnxruntime when it loads (about 10–20× faster per epoch than tfjs wasm on CPU), else tfjs.
 */
export function structuralProbeBackend(tf: Tf): StructuralBackend {
  return tf.getBackend() !== 'tensorflow' && structuralOnnxAvailable() ? 'onnx' : 'tfjs';
}

/** What to record as the probe backend: 'onnxruntime-cpu', or the tfjs backend's label. */
export function structuralProbeBackendLabel(backend: StructuralBackend, tfjsLabel: string): string {
  return backend === 'onnx' ? ONNX_PROBE_BACKEND : tfjsLabel;
}

/**
 * One batch. Word vectors are kept unpadded ([words, hidden]): the projection by B, the only
 * expensive product, then costs nothing for padding; the cheap pairwise part runs on a padded
 * [b, len, rank] view built by a gather (row `words` of the projection is an all-zero row).
 */
export interface ProbeBatch {
  b: number;
  len: number;
  words: number;
  x: Float32Array; // [words, hidden]
  /** For each padded position (b·len): its row in x, or `words` for padding. */
  rows: Int32Array;
  /** For each word: its padded position. */
  positions: Int32Array;
  target: Float32Array; // [b, len, len] or [b, len]
  mask: Float32Array; // same shape as target
  norm: Float32Array; // [b]: length² or length
}

export function makeBatch(examples: readonly ProbeExample[], kind: StructuralKind, hidden: number): ProbeBatch {
  const b = examples.length;
  const len = Math.max(...examples.map((e) => e.n));
  const words = examples.reduce((a, e) => a + e.n, 0);
  const x = new Float32Array(words * hidden);
  const rows = new Int32Array(b * len).fill(words);
  const positions = new Int32Array(words);
  const per = kind === 'distance' ? len * len : len;
  const target = new Float32Array(b * per);
  const mask = new Float32Array(b * per);
  const norm = new Float32Array(b);
  let w = 0;
  examples.forEach((e, k) => {
    x.set(e.vectors.subarray(0, e.n * hidden), w * hidden);
    for (let i = 0; i < e.n; i++) {
      rows[k * len + i] = w + i;
      positions[w + i] = k * len + i;
    }
    w += e.n;
    if (kind === 'distance') {
      const g = e.distances!;
      for (let i = 0; i < e.n; i++) {
        const base = k * per + i * len;
        target.set(g.subarray(i * e.n, (i + 1) * e.n), base);
        mask.fill(1, base, base + e.n);
      }
      norm[k] = e.n * e.n;
    } else {
      target.set(e.depths!.subarray(0, e.n), k * per);
      mask.fill(1, k * per, k * per + e.n);
      norm[k] = e.n;
    }
  });
  return { b, len, words, x, rows, positions, target, mask, norm };
}

/** Projections B·h of a batch's words, as a padded [b, len, rank] tensor (zeros at padding). */
function projectPadded(tf: Tf, B: Tensor2D, x: Tensor2D, p: ProbeBatch): Tensor3D {
  const rank = B.shape[1];
  const t = tf.matMul(x, B);
  const withZero = tf.concat([t, tf.zeros([1, rank])], 0);
  return tf.gather(withZero, tf.tensor1d(p.rows, 'int32')).reshape([p.b, p.len, rank]) as Tensor3D;
}

/**
 * The loss of a batch from its padded projections t: predicted squared distances in matmul form
 * (s_i + s_j − 2 t_i·t_j) or squared norms, L1 against gold over real words, each sentence's sum
 * divided by length² (distance) or length (depth), mean over the batch (loss.py).
 */
function lossFromProjections(tf: Tf, t: Tensor3D, p: ProbeBatch, kind: StructuralKind): Scalar {
  const s = t.square().sum(-1); // [b, len]
  let pred: Tensor = s;
  if (kind === 'distance') pred = s.expandDims(2).add(s.expandDims(1)).sub(tf.matMul(t, t, false, true).mul(2));
  const shape = kind === 'distance' ? [p.b, p.len, p.len] : [p.b, p.len];
  const diff = pred.sub(tf.tensor(p.target, shape)).abs().mul(tf.tensor(p.mask, shape));
  const perSentence = diff.sum(kind === 'distance' ? [1, 2] : 1).div(tf.tensor1d(p.norm));
  return perSentence.mean() as Scalar;
}

/** The batch loss (no gradients): dev evaluation. */
export function batchLoss(tf: Tf, B: Tensor2D, p: ProbeBatch, kind: StructuralKind, hidden: number): Scalar {
  return tf.tidy(() => lossFromProjections(tf, projectPadded(tf, B, tf.tensor2d(p.x, [p.words, hidden]), p), p, kind));
}

/**
 * The batch loss and its gradient with respect to B (hidden × rank), by the chain rule through
 * the projection: dL/dB = Xᵀ · dL/dT over the real words only. Autodiff runs on the cheap
 * pairwise part; the two large products (X·B and Xᵀ·dT) never touch padding. (tfjs's wasm
 * backend also lacks the gather gradient, so the tape could not go through the gather.)
 */
export function batchLossAndGrad(tf: Tf, B: Tensor2D, p: ProbeBatch, kind: StructuralKind, hidden: number): { loss: Scalar; grad: Tensor2D } {
  return tf.tidy(() => {
    const x = tf.tensor2d(p.x, [p.words, hidden]);
    const t = projectPadded(tf, B, x, p);
    const { value, grad } = tf.valueAndGrad((tt: Tensor3D) => lossFromProjections(tf, tt, p, kind))(t);
    const rank = B.shape[1];
    const dT = tf.gather(grad.reshape([p.b * p.len, rank]), tf.tensor1d(p.positions, 'int32'));
    return { loss: value as Scalar, grad: tf.matMul(x, dT, true, false) as Tensor2D };
  });
}

export class StructuralProbe {
  constructor(
    readonly tf: Tf,
    readonly kind: StructuralKind,
    readonly hiddenSize: number,
    readonly rank: number,
    /** hidden × rank (the reference's `proj`; B = projᵀ). */
    readonly proj: Variable,
    /** When set, projections are computed by onnxruntime (structural-onnx.ts). */
    readonly onnx?: StructuralOnnxStep,
  ) {}

  static init(tf: Tf, kind: StructuralKind, hiddenSize: number, rank: number, seed: number, onnx?: StructuralOnnxStep): StructuralProbe {
    const rand = mulberry32(seed);
    const init = new Float32Array(hiddenSize * rank);
    for (let i = 0; i < init.length; i++) init[i] = rand() * 0.1 - 0.05;
    const proj = tf.tidy(() => tf.variable(tf.tensor2d(init, [hiddenSize, rank]), true));
    return new StructuralProbe(tf, kind, hiddenSize, rank, proj, onnx);
  }

  /** B·h_i for every word of a sentence, n × rank. */
  project(vectors: Float32Array, n: number): Float32Array {
    if (this.onnx) return this.onnx.project(this.proj.dataSync() as Float32Array, vectors, n);
    const tf = this.tf;
    return tf.tidy(() => tf.matMul(tf.tensor2d(vectors.subarray(0, n * this.hiddenSize), [n, this.hiddenSize]), this.proj).dataSync() as Float32Array);
  }

  /**
   * Predicted squared distances n × n, computed in float64 from the projections as
   * Σ_k (t_ik − t_jk)², so the matrix is exactly symmetric with a zero diagonal.
   */
  distances(vectors: Float32Array, n: number): Float64Array {
    const t = this.project(vectors, n);
    const r = this.rank;
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let d = 0;
        for (let k = 0; k < r; k++) {
          const v = t[i * r + k]! - t[j * r + k]!;
          d += v * v;
        }
        out[i * n + j] = d;
        out[j * n + i] = d;
      }
    }
    return out;
  }

  /** Predicted depths ‖B h_i‖², computed in float64 from the projections. */
  depths(vectors: Float32Array, n: number): Float64Array {
    const t = this.project(vectors, n);
    const r = this.rank;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += t[i * r + k]! * t[i * r + k]!;
      out[i] = d;
    }
    return out;
  }

  dispose(): void {
    this.proj.dispose();
  }
}

export interface FitResult extends TrainResult {
  probe: StructuralProbe;
  seconds: number;
  /** Who computed the losses and gradients. */
  backend: StructuralBackend;
}

/** Train one probe on `train`, selecting the epoch on `dev` (Hewitt & Manning's regimen). */
export function fitStructuralProbe(tf: Tf, train: readonly ProbeExample[], dev: readonly ProbeExample[], opts: StructuralProbeOptions): FitResult {
  const started = performance.now();
  const { kind, hiddenSize } = opts;
  const rank = opts.rank ?? hiddenSize;
  const batchSize = opts.batchSize ?? 20;
  if (train.length === 0 || dev.length === 0) throw new Error('structural probe: empty train or dev set');
  for (const e of [...train, ...dev]) {
    if ((kind === 'distance' ? e.distances : e.depths) === undefined) throw new Error(`structural probe: example without gold ${kind}`);
  }
  const backend = opts.backend ?? structuralProbeBackend(tf);
  const onnx = backend === 'onnx' ? new StructuralOnnxStep(kind, hiddenSize, rank) : undefined;
  const probe = StructuralProbe.init(tf, kind, hiddenSize, rank, opts.seed, onnx);
  const shuffleRand = mulberry32(opts.seed ^ 0x5bd1e995);
  const toBatches = (items: readonly ProbeExample[]): ProbeBatch[] => {
    const out: ProbeBatch[] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(makeBatch(items.slice(i, i + batchSize), kind, hiddenSize));
    return out;
  };
  // The dev loss is a mean of per-sentence losses, so batch composition does not change it:
  // batching dev sentences by length only saves padding.
  const devBatches = toBatches([...dev].sort((a, b) => a.n - b.n));
  try {
    const B = probe.proj as unknown as Tensor2D;
    // onnx: B's values are read out of tfjs for each batch (one copy of hidden × rank floats),
    // the loss and gradient come back as plain arrays; Adam stays in tfjs.
    const projData = () => probe.proj.dataSync() as Float32Array;
    const result = trainWithEarlyStopping<ProbeBatch>(tf, {
      variables: [probe.proj],
      loss: onnx
        ? (p) => ({ loss: tf.scalar(onnx.loss(projData(), p)), count: p.b })
        : (p) => ({ loss: batchLoss(tf, B, p, kind, hiddenSize), count: p.b }),
      lossAndGrads: onnx
        ? (p) => {
            const { loss, grad } = onnx.lossAndGrad(projData(), p);
            return { loss: tf.scalar(loss), grads: [tf.tensor2d(grad, [hiddenSize, rank])], count: p.b };
          }
        : (p) => {
            const { loss, grad } = batchLossAndGrad(tf, B, p, kind, hiddenSize);
            return { loss, grads: [grad], count: p.b };
          },
      trainBatches: () => toBatches(shuffled(train, shuffleRand)),
      devBatches,
      learningRate: opts.learningRate ?? 0.001,
      maxEpochs: opts.maxEpochs ?? 40,
      onEpoch: opts.onEpoch,
    });
    return { ...result, probe, seconds: (performance.now() - started) / 1000, backend };
  } catch (err) {
    probe.dispose();
    throw err;
  }
}
