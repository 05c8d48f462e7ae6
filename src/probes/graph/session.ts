/**
 * Runs graphs built by graph.ts with onnxruntime-node's public async API
 * (InferenceSession.create / run): CPU, or the CUDA provider (falling back to CPU per node).
 */
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { assertCudaInstalled } from '../../model/onnx-engine.js';
import type { Feed } from './types.js';

export interface SessionOptions {
  device?: 'cpu' | 'cuda';
  /** Intra-op threads (default: the machine's parallelism). */
  threads?: number;
  /** Let idle intra-op threads busy-wait for work (default false: see create()). */
  spinning?: boolean;
}

function tensorOf(f: Feed): ort.Tensor {
  const dims = [...f.dims];
  const d = f.data;
  if (d instanceof Float32Array) return new ort.Tensor('float32', d, dims);
  if (d instanceof Float64Array) return new ort.Tensor('float64', d, dims);
  if (d instanceof BigInt64Array) return new ort.Tensor('int64', d, dims);
  return new ort.Tensor('bool', d, dims);
}

export class GraphSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** The graph's inputs: feeds not named here are ignored. */
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  static async create(model: Uint8Array, opts: SessionOptions = {}): Promise<GraphSession> {
    if (opts.device === 'cuda') assertCudaInstalled(ort);
    const session = await ort.InferenceSession.create(model, {
      executionProviders: opts.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
      intraOpNumThreads: opts.threads ?? Math.max(1, availableParallelism()),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      // Busy-waiting threads burn a shared machine's cores between the many small runs of a
      // training loop (measured: bench/trainer.ts, PERFORMANCE notes in the bench's header).
      extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
    });
    return new GraphSession(session, session.inputNames, session.outputNames);
  }

  /**
   * Run with the feeds the graph takes; returns every output. Outputs named in `into` are
   * written into the arrays given (onnxruntime's pre-allocated fetches; their dims must be the
   * output's) and returned as those arrays: a trainer receives its gradients where its optimiser
   * reads them, without a copy of its own.
   */
  async run(feeds: Record<string, Feed>, into: Record<string, Feed> = {}): Promise<Record<string, { data: Float32Array | Float64Array | BigInt64Array | Uint8Array; dims: number[] }>> {
    const t: Record<string, ort.Tensor> = {};
    for (const name of this.inputNames) {
      const f = feeds[name];
      if (!f) throw new Error(`graph input '${name}' was not fed (fed: ${Object.keys(feeds).join(', ') || 'nothing'})`);
      t[name] = tensorOf(f);
    }
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const name of this.outputNames) fetches[name] = into[name] ? tensorOf(into[name]) : null;
    const r = await this.session.run(t, fetches);
    const out: Record<string, { data: Float32Array | Float64Array | BigInt64Array | Uint8Array; dims: number[] }> = {};
    for (const [k, v] of Object.entries(r)) out[k] = into[k] ? { data: into[k].data, dims: [...into[k].dims] } : { data: v.data as Float32Array, dims: [...v.dims] };
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
