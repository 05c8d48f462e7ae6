import { parentPort, workerData } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import type { WorkerAnswer, WorkerHello } from '../util/worker-client.js';

/**
 * The onnx engine's session, on a worker thread (issue 14). onnxruntime-node's `run` is
 * synchronous on the calling thread, so on the main thread nothing else happens during a
 * forward pass: word pooling and store writes left a core idle. Here the main thread pools and
 * writes batch i while this thread runs batch i+1 (src/extract/forward.ts keeps one forward
 * in flight). Inputs and outputs cross as transferred ArrayBuffers (no copy).
 *
 * Protocol: workerData {source: graph path or bytes, options: SessionOptions}; posts
 * {type: 'ready'} or {type: 'error', message} once; then answers each {id, feeds, fetches} with
 * {id, outputs: {name: {data, dims}}} or {id, error}.
 */
export interface WorkerFeed {
  type: 'int64' | 'float32';
  data: BigInt64Array | Float32Array;
  dims: number[];
}

export interface WorkerRequest {
  id: number;
  feeds: Record<string, WorkerFeed>;
  fetches: string[];
}

/** Its hello, then an answer per request (src/util/worker-client.ts reads them). */
export type WorkerReply = WorkerHello | WorkerAnswer<{ outputs: Record<string, { data: Float32Array; dims: number[] }> }>;

async function main(): Promise<void> {
  const port = parentPort!;
  const { source, options } = workerData as { source: string | Uint8Array; options: Ort.InferenceSession.SessionOptions };
  let session: Ort.InferenceSession;
  let ort: typeof Ort;
  try {
    const m = await import('onnxruntime-node');
    ort = ((m as unknown as { default?: typeof Ort }).default ?? m) as typeof Ort;
    session = typeof source === 'string' ? await ort.InferenceSession.create(source, options) : await ort.InferenceSession.create(source, options);
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error).message } satisfies WorkerReply);
    return;
  }
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
  port.on('message', async (req: WorkerRequest) => {
    try {
      const feeds: Record<string, Ort.Tensor> = {};
      for (const [name, f] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims);
      const results = await session.run(feeds, req.fetches);
      const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
      const transfer: ArrayBuffer[] = [];
      for (const name of req.fetches) {
        const t = results[name]!;
        const data = t.data as Float32Array;
        outputs[name] = { data, dims: t.dims.map(Number) };
        if (!transfer.includes(data.buffer as ArrayBuffer)) transfer.push(data.buffer as ArrayBuffer);
      }
      port.postMessage({ id: req.id, outputs } satisfies WorkerReply, transfer);
    } catch (err) {
      port.postMessage({ id: req.id, error: (err as Error).message } satisfies WorkerReply);
    }
  });
}

await main();
