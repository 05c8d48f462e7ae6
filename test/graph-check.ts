/**
 * Gradient checks for the probe autodiff: the gradient graph's values against central finite
 * differences of the loss graph, both run by onnxruntime in float64 (or float32 with a coarser
 * step and tolerance, for an op onnxruntime's CPU provider implements only in float).
 */
import assert from 'node:assert/strict';
import { AutodiffGraph } from '../src/probes/graph/graph.js';
import { GraphSession } from '../src/probes/graph/session.js';
import type { Dim, Feed, Value } from '../src/probes/graph/types.js';
import { mulberry32 } from '../src/util/random.js';

export type Precision = 'float32' | 'float64';

export function randomData(n: number, seed: number, lo = -1, hi = 1, precision: Precision = 'float64'): Float64Array | Float32Array {
  const r = mulberry32(seed);
  const a = precision === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

export interface CheckSpec {
  precision?: Precision;
  /** Differentiated inputs: name → concrete dims, declared shape (default: the dims), value range. */
  wrt: Record<string, { dims: number[]; shape?: Dim[]; range?: [number, number]; data?: ArrayLike<number> }>;
  /** Other feeds (indices, masks, conditions, fixed data), by name, with their declared shapes. */
  data?: Record<string, { feed: Feed; shape: Dim[]; type?: 'float' | 'int64' | 'bool' }>;
  /** Feeds for inputs the graph declares itself (dropout masks). */
  extraFeeds?: Record<string, Feed>;
  /** Builds the value whose weighted sum is the loss; or returns the scalar loss itself when `scalar`. */
  build: (g: AutodiffGraph, v: Record<string, Value>) => Value;
  scalar?: boolean;
  seed?: number;
  /** Relative tolerance (default 1e-6 in float64, 2e-2 in float32). */
  tol?: number;
  /** Finite-difference step (default 1e-6 in float64, 1e-2 in float32). */
  step?: number;
  /** Check at most this many entries per input (default all up to 40, else a seeded sample). */
  maxEntries?: number;
  training?: boolean;
}

/** Build, differentiate, compare; returns the analytic gradients for further assertions. */
export async function checkGradients(label: string, spec: CheckSpec): Promise<Record<string, Float64Array | Float32Array>> {
  const precision = spec.precision ?? 'float64';
  const tol = spec.tol ?? (precision === 'float64' ? 1e-6 : 2e-2);
  const h = spec.step ?? (precision === 'float64' ? 1e-6 : 1e-2);
  const seed = spec.seed ?? 1;
  const g = new AutodiffGraph({ precision, training: spec.training ?? true });
  const vals: Record<string, Value> = {};
  const feeds: Record<string, Feed> = {};
  let s = seed;
  for (const [name, w] of Object.entries(spec.wrt)) {
    vals[name] = g.input(name, w.shape ?? w.dims);
    const n = w.dims.reduce((a, b) => a * b, 1);
    const data = precision === 'float64' ? new Float64Array(n) : new Float32Array(n);
    if (w.data) data.set(Array.from(w.data));
    else data.set(randomData(n, ++s, ...(w.range ?? [-1, 1]), precision));
    feeds[name] = { data, dims: w.dims };
  }
  for (const [name, d] of Object.entries(spec.data ?? {})) {
    vals[name] = g.input(name, d.shape, d.type ?? 'float');
    feeds[name] = d.feed;
  }
  Object.assign(feeds, spec.extraFeeds ?? {});
  const y = spec.build(g, vals);
  let loss: Value;
  if (spec.scalar) loss = y;
  else {
    // loss = Σ y ⊙ R with a fixed random R, so every output entry carries its own weight.
    const fwd = await GraphSession.create(g.toOnnx({ y }, 'forward'));
    const dims = (await fwd.run(feeds)).y!.dims;
    await fwd.dispose();
    const R = g.input('__R', [...y.shape]);
    const n = dims.reduce((a, b) => a * b, 1);
    feeds.__R = { data: randomData(n, seed + 1000, -1, 1, precision), dims };
    loss = dims.length ? g.reduceSum(g.mul(y, R), dims.map((_, i) => i)) : g.mul(y, R);
  }
  const names = Object.keys(spec.wrt);
  const grads = g.grad(loss, names.map((n) => vals[n]!));
  const outputs: Record<string, Value> = { loss };
  names.forEach((n, k) => (outputs[`grad.${n}`] = grads[k]!));
  const both = await GraphSession.create(g.toOnnx(outputs, 'loss_and_grad'));
  const lossOnly = await GraphSession.create(g.toOnnx({ loss }, 'loss'));
  const result: Record<string, Float64Array | Float32Array> = {};
  try {
    const r = await both.run(feeds);
    const lossAt = async () => Number((await lossOnly.run(feeds)).loss!.data[0]);
    for (const name of names) {
      const analytic = r[`grad.${name}`]!.data as Float64Array | Float32Array;
      result[name] = analytic;
      const x = feeds[name]!.data as Float64Array | Float32Array;
      assert.equal(analytic.length, x.length, `${label}: gradient of ${name} has ${analytic.length} entries for ${x.length}`);
      const max = spec.maxEntries ?? 40;
      const pick = mulberry32(seed + 7);
      const entries = x.length <= max ? [...x.keys()] : Array.from({ length: max }, () => Math.floor(pick() * x.length));
      for (const i of entries) {
        const x0 = x[i]!;
        x[i] = x0 + h;
        const up = await lossAt();
        x[i] = x0 - h;
        const down = await lossAt();
        x[i] = x0;
        const numeric = (up - down) / (2 * h);
        const a = analytic[i]!;
        const scale = Math.max(1, Math.abs(a), Math.abs(numeric));
        assert.ok(Math.abs(a - numeric) <= tol * scale, `${label}: d loss/d ${name}[${i}] analytic ${a} vs finite difference ${numeric}`);
      }
    }
  } finally {
    await both.dispose();
    await lossOnly.dispose();
  }
  return result;
}
