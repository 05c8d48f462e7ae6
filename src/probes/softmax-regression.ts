/**
 * L2-regularised softmax (multinomial logistic) regression on the shared trainer: logits =
 * x·W + b, loss = mean cross-entropy + λ‖W‖² (the bias is not penalised), written once as a
 * probe graph with the shared blocks; λ is chosen on dev from a grid (the best dev accuracy; ties
 * go to the stronger penalty). Used by `relations` (Coenen et al. 2019's attention probe:
 * "L2-regularised linear classifiers", REFERENCES.md §4.1) for the binary and the multi-class
 * probe. Features are z-scored with the train split's column statistics (our choice: the raw
 * attention values differ in scale by orders of magnitude between heads).
 */
import type { Feed } from './graph/types.js';
import { compileProbe, initParams, type CompiledProbe, type ProbeDefinition } from './probe-model.js';
import { l2Penalty, linear, softmaxCrossEntropy } from './blocks.js';
import { trainProbe, type Batch } from './trainer.js';
import { mulberry32, shuffled } from '../util/random.js';
import { argmaxRows } from './classification.js';

export const DEFAULT_L2_GRID: readonly number[] = [0, 1e-5, 1e-4, 1e-3, 1e-2];

export function softmaxRegression(features: number, classes: number, l2: number): ProbeDefinition {
  return {
    name: `softmax-regression-${features}x${classes}-l2-${l2}`,
    params: [
      { name: 'W', shape: [features, classes], init: 'zeros' },
      { name: 'b', shape: [classes], init: 'zeros' },
    ],
    inputs: [
      { name: 'x', shape: ['N', features] },
      { name: 'y', shape: ['N'], type: 'int64' },
    ],
    build(g, p, inp) {
      const logits = linear(g, inp.x!, p.W!, p.b!);
      const ce = softmaxCrossEntropy(g, logits, inp.y!);
      return { loss: l2 > 0 ? g.add(ce, l2Penalty(g, [p.W!], l2)) : ce, outputs: { logits } };
    },
  };
}

export interface Dataset {
  /** [rows, features], already standardised. */
  x: Float32Array;
  /** Class per row (0..C−1). */
  y: Int32Array;
}

function feeds(d: Dataset, F: number, rows: readonly number[] | { from: number; to: number }): Record<string, Feed> {
  const idx = Array.isArray(rows) ? rows : Array.from({ length: (rows as { to: number }).to - (rows as { from: number }).from }, (_, k) => (rows as { from: number }).from + k);
  const n = idx.length;
  const x = new Float32Array(n * F);
  const y = new BigInt64Array(n);
  idx.forEach((r, k) => {
    x.set(d.x.subarray(r * F, (r + 1) * F), k * F);
    y[k] = BigInt(d.y[r]!);
  });
  return { x: { data: x, dims: [n, F] }, y: { data: y, dims: [n] } };
}

/** Class scores [rows, C] of a whole dataset, predicted in chunks. */
export async function predictLogits(probe: CompiledProbe, params: Float32Array[], d: Dataset, F: number, C: number, chunk = 8192): Promise<Float32Array> {
  const rows = d.y.length;
  const out = new Float32Array(rows * C);
  for (let from = 0; from < rows; from += chunk) {
    const to = Math.min(rows, from + chunk);
    const r = await probe.predict(params, feeds(d, F, { from, to }));
    out.set(r.logits!.data, from * C);
  }
  return out;
}

export interface RegressionResult {
  probe: CompiledProbe;
  params: Float32Array[];
  l2: number;
  devAccuracy: number;
  epochs: number;
  grid: { l2: number; devAccuracy: number; epochs: number }[];
}

export interface RegressionOptions {
  train: Dataset;
  dev: Dataset;
  features: number;
  classes: number;
  l2Grid?: readonly number[];
  seed: number;
  batchSize?: number;
  learningRate?: number;
  maxEpochs?: number;
  patience?: number;
  device?: 'cpu' | 'cuda';
  onFit?: (l2: number, devAccuracy: number, epochs: number) => void;
}

const accuracyOf = (logits: Float32Array, y: Int32Array, C: number): number => {
  const p = argmaxRows(logits, C);
  let hit = 0;
  for (let i = 0; i < y.length; i++) if (p[i] === y[i]) hit++;
  return y.length ? hit / y.length : Number.NaN;
};

/**
 * Fit one classifier per λ of the grid (Adam, shuffled mini-batches, early stopping on dev
 * accuracy) and keep the best on dev. The caller disposes `probe`.
 */
export async function fitSoftmaxRegression(o: RegressionOptions): Promise<RegressionResult> {
  const F = o.features;
  const C = o.classes;
  const bs = o.batchSize ?? 256;
  const order = Array.from({ length: o.train.y.length }, (_, i) => i);
  let best: RegressionResult | null = null;
  const grid: RegressionResult['grid'] = [];
  for (const l2 of o.l2Grid ?? DEFAULT_L2_GRID) {
    const def = softmaxRegression(F, C, l2);
    const probe = await compileProbe(def, { device: o.device });
    const params = initParams(def, o.seed);
    const train = async function* (epoch: number): AsyncIterable<Batch> {
      const perm = shuffled(order, mulberry32((o.seed + 7919 * (epoch + 1)) >>> 0));
      for (let k = 0; k < perm.length; k += bs) {
        const rows = perm.slice(k, k + bs);
        yield { feeds: feeds(o.train, F, rows), count: rows.length };
      }
    };
    const dev = async function* (): AsyncIterable<Batch> {
      for (let from = 0; from < o.dev.y.length; from += 8192) {
        const to = Math.min(o.dev.y.length, from + 8192);
        yield { feeds: feeds(o.dev, F, { from, to }), count: to - from };
      }
    };
    const result = await trainProbe({
      probe,
      params,
      train,
      dev,
      learningRate: o.learningRate ?? 0.01,
      maxEpochs: o.maxEpochs ?? 20,
      patience: o.patience ?? 3,
      seed: o.seed,
      select: async (p) => accuracyOf(await predictLogits(probe, p, o.dev, F, C), o.dev.y, C),
    });
    const devAccuracy = accuracyOf(await predictLogits(probe, params, o.dev, F, C), o.dev.y, C);
    grid.push({ l2, devAccuracy, epochs: result.epochs });
    o.onFit?.(l2, devAccuracy, result.epochs);
    if (!best || devAccuracy >= best.devAccuracy) {
      if (best) await best.probe.dispose();
      best = { probe, params, l2, devAccuracy, epochs: result.epochs, grid };
    } else await probe.dispose();
  }
  return best!;
}

/**
 * Column means and standard deviations of [rows, features] (sd 1 where a column is constant),
 * for z-scoring with the train split's statistics.
 */
export function columnStats(x: Float32Array, features: number): { mean: Float64Array; sd: Float64Array } {
  const rows = x.length / features;
  const mean = new Float64Array(features);
  const sq = new Float64Array(features);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features; f++) {
      const v = x[r * features + f]!;
      mean[f]! += v;
      sq[f]! += v * v;
    }
  }
  const sd = new Float64Array(features);
  for (let f = 0; f < features; f++) {
    mean[f] = rows ? mean[f]! / rows : 0;
    const varf = rows ? sq[f]! / rows - mean[f]! ** 2 : 0;
    sd[f] = varf > 1e-12 ? Math.sqrt(varf) : 1;
  }
  return { mean, sd };
}

/** In place: x ← (x − mean) / sd per column. */
export function standardize(x: Float32Array, features: number, stats: { mean: Float64Array; sd: Float64Array }): void {
  for (let i = 0; i < x.length; i++) {
    const f = i % features;
    x[i] = (x[i]! - stats.mean[f]!) / stats.sd[f]!;
  }
}
