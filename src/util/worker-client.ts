/**
 * The calling side of a worker thread that answers requests by id (the onnx engine's session,
 * src/model/onnx-worker.ts; a probe's training steps, src/probes/train-worker.ts). The worker
 * posts {type: 'ready'} or {type: 'error', message} once, then {id, ...answer} or {id, error}
 * for each request. Every pending call fails if the worker dies; the worker holds the process
 * open only while a call is pending.
 */
import { Worker } from 'node:worker_threads';

export type WorkerHello = { type: 'ready' } | { type: 'error'; message: string };
export type WorkerAnswer<A> = ({ id: number } & A) | { id: number; error: string };

export class WorkerClient<A extends object> {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (a: A) => void; reject: (e: Error) => void }>();
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    what: string,
  ) {
    worker.on('message', (m: WorkerAnswer<A> | WorkerHello) => {
      if (!('id' in m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if ('error' in m && typeof m.error === 'string') p.reject(new Error(m.error));
      else p.resolve(m as A);
    });
    const fail = (err: Error) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the ${what} worker thread exited (code ${code})`)));
  }

  /** Start the worker at `url` with `workerData`; resolves once it says it is ready. */
  static start<A extends object>(url: URL, workerData: unknown, what: string): Promise<WorkerClient<A>> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(url, { workerData });
      const onError = (err: Error) => reject(err);
      worker.once('error', onError);
      worker.once('message', (m: WorkerHello) => {
        worker.off('error', onError);
        if ('type' in m && m.type === 'ready') {
          worker.unref();
          resolve(new WorkerClient<A>(worker, what));
        } else {
          void worker.terminate();
          reject(new Error(`${what} worker: ${'type' in m && m.type === 'error' ? m.message : 'unexpected first message'}`));
        }
      });
    });
  }

  /** Send one request (`transfer`: buffers moved, not copied); its answer, in the worker's order. */
  call(request: object, transfer: ArrayBuffer[] = []): Promise<A> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...request }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}
