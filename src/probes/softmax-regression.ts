/**
 * L2-regularised softmax (multinomial logistic) regression written once as a probe graph:
 * logits = x·W + b, loss = mean over items of −log softmax(logits)[y] + λ‖W‖² (the bias is not
 * penalised). λ is an input (`l2`, a scalar fed per batch), so one compiled probe serves every
 * regularisation strength tried on dev. Used by `relations` (Coenen et al. 2019's attention
 * probe: "L2-regularised linear classifiers"; REFERENCES.md §4.1) for the binary and the
 * multi-class probe.
 */
import type { Feed } from './graph/types.js';
import type { ProbeDefinition } from './probe-model.js';

export function softmaxRegression(features: number, classes: number): ProbeDefinition {
  return {
    name: `softmax-regression-${features}x${classes}`,
    params: [
      { name: 'W', shape: [features, classes], init: 'zeros' },
      { name: 'b', shape: [classes], init: 'zeros' },
    ],
    inputs: [
      { name: 'x', shape: ['N', features] },
      { name: 'y', shape: ['N', classes] },
      { name: 'l2', shape: [] },
    ],
    build(g, p, inp) {
      const logits = g.add(g.matmul(inp.x!, p.W!), p.b!);
      const logp = g.logSoftmax(logits, 1);
      const nll = g.neg(g.reduceMean(g.reduceSum(g.mul(inp.y!, logp), [1]), [0]));
      const penalty = g.mul(inp.l2!, g.reduceSum(g.mul(p.W!, p.W!), [0, 1]));
      return { loss: g.add(nll, penalty), outputs: { logits } };
    },
  };
}

/** The feeds of one batch: rows `rows` of the (standardised) feature matrix, one-hot labels. */
export function regressionFeeds(x: Float32Array, labels: Int32Array, features: number, classes: number, rows: readonly number[], l2: number): Record<string, Feed> {
  const n = rows.length;
  const xb = new Float32Array(n * features);
  const yb = new Float32Array(n * classes);
  rows.forEach((r, k) => {
    xb.set(x.subarray(r * features, (r + 1) * features), k * features);
    yb[k * classes + labels[r]!] = 1;
  });
  return {
    x: { data: xb, dims: [n, features] },
    y: { data: yb, dims: [n, classes] },
    l2: { data: Float32Array.of(l2), dims: [] },
  };
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
