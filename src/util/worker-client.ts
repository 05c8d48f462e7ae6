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

/** Clients whose worker is alive (quiesceWorkers waits on them). */
const live = new Set<{ readonly busy: boolean }>();
let closing = false;

/**
 * Before the process exits on a signal (util/interrupt.ts): no new request is sent (a call made
 * from now on never settles), and the ones a worker is running finish, for at most `ms`. A
 * worker torn down inside a native call (onnxruntime running a batch) aborts the whole process
 * (SIGABRT, "terminate called after throwing an instance of 'Napi::Error'") instead of letting
 * it exit with the signal's code.
 */
export async function quiesceWorkers(ms: number): Promise<void> {
  closing = true;
  const deadline = performance.now() + ms;
  while ([...live].some((c) => c.busy) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

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
    worker.on('exit', (code) => {
      live.delete(this);
      fail(new Error(`the ${what} worker thread exited (code ${code})`));
    });
    live.add(this);
  }

  /** Whether the worker is running a request. */
  get busy(): boolean {
    return this.pending.size > 0;
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
    if (closing) return new Promise(() => {}); // the process is exiting on a signal
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...request }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.worker.removeAllListeners('exit');
    live.delete(this);
    await this.worker.terminate();
  }
}
