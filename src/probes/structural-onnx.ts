/**
 * The structural probe's training step as small ONNX graphs run by onnxruntime-node (CPU).
 *
 * Why: tfjs's wasm backend multiplies matrices at ~1.5 GFLOP/s on a 2-core machine, where
 * onnxruntime's MatMul reaches ~130 GFLOP/s on the same cores; the probe's two large products
 * (X·B and Xᵀ·dT, [words, hidden] × [hidden, rank]) are nearly all of its training time. So,
 * unless tfjs runs on its native tensorflow backend (tfjs-node, CUDA), the loss and dL/dB of a
 * batch are computed here. The math is the tfjs path's (structural.ts lossFromProjections and
 * batchLossAndGrad) with the backward pass written out by hand:
 *   T = Gather(Concat(X·B, 0-row), rows) → [b, len, rank];  s = Σ_k T²
 *   distance: pred = s_i + s_j − 2 T_i·T_j;  depth: pred = s
 *   loss = mean_b Σ |pred − target|·mask / norm_b          (Hewitt & Manning loss.py)
 *   S = sign(pred − target)·mask / (norm_b · b)             (dL/dpred)
 *   distance: M = S + Sᵀ, dT = 2 (rowsum(M) ⊙ T − M·T);  depth: dT = 2 S ⊙ T
 *   dL/dB = Xᵀ · Gather(dT, positions)                      (real words only)
 *
 * The graphs are run through onnxruntime-node's native session, whose run() is synchronous:
 * the package's public InferenceSession.run only wraps that call in a Promise (setImmediate,
 * dist/backend.js), and the probe trainer (trainer.ts, fitStructuralProbe, StructuralProbe)
 * is synchronous. When that binding cannot be loaded, structuralOnnxAvailable() is false and
 * the tfjs path trains instead.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import onnxProto from 'onnx-proto';
import type * as Ort from 'onnxruntime-node';
import { FLOAT, GraphBuilder } from '../model/onnx-graph.js';
import type { ProbeBatch, StructuralKind } from './structural.js';

const INT32 = onnxProto.onnx.TensorProto.DataType.INT32;

/** What the backend records for probes trained here. */
export const ONNX_PROBE_BACKEND = 'onnxruntime-cpu';

interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, Ort.Tensor>, fetches: Record<string, null>, options: object): Record<string, { data: unknown; dims: readonly number[] }>;
  dispose(): void;
}

interface SyncOrt {
  Tensor: typeof Ort.Tensor;
  Session: new () => NativeSession;
}

let syncOrt: SyncOrt | null | undefined;

/** onnxruntime-node's Tensor class and native session, loaded synchronously; null if absent. */
function loadSyncOrt(): SyncOrt | null {
  if (syncOrt !== undefined) return syncOrt;
  try {
    const require = createRequire(import.meta.url);
    const ort = require('onnxruntime-node') as typeof Ort;
    const b = require('onnxruntime-node/dist/binding.js') as { initOrt: () => void; binding: { InferenceSession: new () => NativeSession } };
    b.initOrt();
    if (typeof b.binding?.InferenceSession !== 'function' || typeof ort.Tensor !== 'function') throw new Error('unexpected onnxruntime-node layout');
    syncOrt = { Tensor: ort.Tensor, Session: b.binding.InferenceSession };
  } catch {
    syncOrt = null;
  }
  return syncOrt;
}

/** True when the onnx training step can run (onnxruntime-node and its CPU binding load). */
export function structuralOnnxAvailable(): boolean {
  return loadSyncOrt() !== null;
}

type Part = 'train' | 'loss' | 'project';

/** The graph of one part. Dimensions words, hidden, rank, b and len are all dynamic. */
export function buildStructuralGraph(kind: StructuralKind, part: Part): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', FLOAT, ['words', 'hidden']);
  const proj = g.input('proj', FLOAT, ['hidden', 'rank']);
  if (part === 'project') {
    g.op('MatMul', [x, proj], {}, 'projected');
    g.output('projected', FLOAT, ['words', 'rank']);
    return g.model('structural_probe_project', 'structural probe: X·B, built by bert-probe');
  }
  const rows = g.input('rows', INT32, ['bl']);
  const dist = kind === 'distance';
  const target = g.input('target', FLOAT, dist ? ['b', 'len', 'len'] : ['b', 'len']);
  const mask = g.input('mask', FLOAT, dist ? ['b', 'len', 'len'] : ['b', 'len']);
  const norm = g.input('norm', FLOAT, ['b']);

  // T: the projections with an all-zero row appended (padding gathers it), as [b, len, rank].
  const padded = g.op('Pad', [g.op('MatMul', [x, proj]), g.constI([0, 0, 1, 0])]);
  const shape3 = g.op('Concat', [g.op('Shape', [target], { start: 0, end: 2 }), g.constI([-1])], { axis: 0 });
  const t = g.op('Reshape', [g.op('Gather', [padded, rows], { axis: 0 }), shape3]);
  const two = g.constF([2]);
  let pred: string;
  if (dist) {
    const s = g.op('ReduceSum', [g.op('Mul', [t, t]), g.constI([-1])], { keepdims: 1 }); // [b, len, 1]
    const gram = g.op('MatMul', [t, g.op('Transpose', [t], { perm: [0, 2, 1] })]);
    pred = g.op('Sub', [g.op('Add', [s, g.op('Transpose', [s], { perm: [0, 2, 1] })]), g.op('Mul', [gram, two])]);
  } else {
    pred = g.op('ReduceSum', [g.op('Mul', [t, t]), g.constI([-1])], { keepdims: 0 }); // [b, len]
  }
  const diff = g.op('Sub', [pred, target]);
  const perSentence = g.op('Div', [g.op('ReduceSum', [g.op('Mul', [g.op('Abs', [diff]), mask]), g.constI(dist ? [1, 2] : [1])], { keepdims: 0 }), norm]);
  g.op('ReduceMean', [perSentence], { keepdims: 0 }, 'loss');
  g.output('loss', FLOAT, []);
  if (part === 'loss') return g.model(`structural_probe_${kind}_loss`, `structural ${kind} probe: batch loss, built by bert-probe`);

  // Backward, by hand (see the top of this file).
  const positions = g.input('positions', INT32, ['words']);
  const batchCount = g.op('Cast', [g.op('Shape', [norm])], { to: FLOAT }); // [1]: b
  const scale = g.op('Mul', [g.op('Unsqueeze', [norm, g.constI(dist ? [1, 2] : [1])]), batchCount]);
  const S = g.op('Div', [g.op('Mul', [g.op('Sign', [diff]), mask]), scale]);
  let dT: string;
  if (dist) {
    const M = g.op('Add', [S, g.op('Transpose', [S], { perm: [0, 2, 1] })]);
    const rowSum = g.op('ReduceSum', [M, g.constI([-1])], { keepdims: 1 });
    dT = g.op('Mul', [g.op('Sub', [g.op('Mul', [rowSum, t]), g.op('MatMul', [M, t])]), two]);
  } else {
    dT = g.op('Mul', [g.op('Mul', [g.op('Unsqueeze', [S, g.constI([-1])]), t]), two]);
  }
  const rank = g.op('Shape', [proj], { start: 1, end: 2 });
  const dTRows = g.op('Reshape', [dT, g.op('Concat', [g.constI([-1]), rank], { axis: 0 })]);
  const dTWords = g.op('Gather', [dTRows, positions], { axis: 0 });
  g.op('MatMul', [g.op('Transpose', [x], { perm: [1, 0] }), dTWords], {}, 'grad');
  g.output('grad', FLOAT, ['hidden', 'rank']);
  return g.model(`structural_probe_${kind}_train`, `structural ${kind} probe: batch loss and dL/dB, built by bert-probe`);
}

const sessions = new Map<string, NativeSession>();

function session(ort: SyncOrt, kind: StructuralKind, part: Part): NativeSession {
  const key = part === 'project' ? part : `${kind}/${part}`;
  let s = sessions.get(key);
  if (!s) {
    const bytes = buildStructuralGraph(kind, part);
    s = new ort.Session();
    s.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
      executionProviders: ['cpu'],
      intraOpNumThreads: Math.max(1, availableParallelism()),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // As the onnx engine (onnx-engine.ts): no busy-waiting, native warnings off stderr.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
      logSeverityLevel: 3,
    });
    sessions.set(key, s);
  }
  return s;
}

/** The structural probe's batch loss and gradient (and projection) by onnxruntime. */
export class StructuralOnnxStep {
  private readonly ort: SyncOrt;

  constructor(
    readonly kind: StructuralKind,
    readonly hiddenSize: number,
    readonly rank: number,
  ) {
    const ort = loadSyncOrt();
    if (!ort) throw new Error('onnxruntime-node could not be loaded');
    this.ort = ort;
  }

  private f32(data: Float32Array, dims: number[]): Ort.Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  private feeds(proj: Float32Array, p: ProbeBatch, withPositions: boolean): Record<string, Ort.Tensor> {
    const shape = this.kind === 'distance' ? [p.b, p.len, p.len] : [p.b, p.len];
    const feeds: Record<string, Ort.Tensor> = {
      x: this.f32(p.x, [p.words, this.hiddenSize]),
      proj: this.f32(proj, [this.hiddenSize, this.rank]),
      rows: new this.ort.Tensor('int32', p.rows, [p.b * p.len]),
      target: this.f32(p.target, shape),
      mask: this.f32(p.mask, shape),
      norm: this.f32(p.norm, [p.b]),
    };
    if (withPositions) feeds.positions = new this.ort.Tensor('int32', p.positions, [p.words]);
    return feeds;
  }

  /** Batch loss and dL/dproj ([hidden, rank], row-major) at proj. */
  lossAndGrad(proj: Float32Array, p: ProbeBatch): { loss: number; grad: Float32Array } {
    const r = session(this.ort, this.kind, 'train').run(this.feeds(proj, p, true), { loss: null, grad: null }, {});
    return { loss: (r.loss!.data as Float32Array)[0]!, grad: r.grad!.data as Float32Array };
  }

  /** Batch loss at proj (dev evaluation). */
  loss(proj: Float32Array, p: ProbeBatch): number {
    const r = session(this.ort, this.kind, 'loss').run(this.feeds(proj, p, false), { loss: null }, {});
    return (r.loss!.data as Float32Array)[0]!;
  }

  /** X·proj for n word vectors ([n, hidden] → [n, rank]). */
  project(proj: Float32Array, vectors: Float32Array, n: number): Float32Array {
    const r = session(this.ort, this.kind, 'project').run({ x: this.f32(vectors.subarray(0, n * this.hiddenSize), [n, this.hiddenSize]), proj: this.f32(proj, [this.hiddenSize, this.rank]) }, { projected: null }, {});
    return r.projected!.data as Float32Array;
  }
}
