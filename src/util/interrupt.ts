/**
 * SIGINT / SIGTERM (issue 15 item 2). The CLI installs one handler per process (src/cli/
 * common.ts); modules that hold state a user would want kept register a hook here: the
 * ResultSet marks its manifest `interrupted` with the stage and writes what is finished, locks
 * are released. Hooks run synchronously; then, once the worker threads have finished the request
 * they run (at most 3 s; util/worker-client.ts quiesceWorkers), the process exits 130 (SIGINT) or 143 (SIGTERM),
 * the shell convention 128 + signal number. Files are only ever renamed into place whole
 * (util/atomic.ts), and a signal is handled between two JavaScript tasks, so no half-written
 * file is left behind by an interrupt.
 */
import { quiesceWorkers } from './worker-client.js';

export type InterruptSignal = 'SIGINT' | 'SIGTERM';

export const SIGNAL_EXIT: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143 };

type Hook = (signal: InterruptSignal) => void;
const hooks = new Set<Hook>();

/** Register a hook run on SIGINT/SIGTERM; returns a function that removes it. */
export function onInterrupt(hook: Hook): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

let installed = false;
let interrupting = false;

/**
 * Install the handlers (once). `report` prints the one-line notice. A second signal while the
 * hooks run exits at once.
 */
export function installSignalHandlers(report: (message: string) => void): void {
  if (installed) return;
  installed = true;
  const handle = (signal: InterruptSignal) => {
    const code = SIGNAL_EXIT[signal];
    if (interrupting) process.exit(code);
    interrupting = true;
    process.exitCode = code;
    report(`interrupted (${signal}): stopping`);
    for (const hook of [...hooks]) {
      try {
        hook(signal);
      } catch (err) {
        report(`while stopping: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // Worker threads running onnxruntime finish their batch first (≤ 3 s): exiting under one aborts the process.
    void quiesceWorkers(3000).finally(() => process.exit(code));
  };
  process.on('SIGINT', () => handle('SIGINT'));
  process.on('SIGTERM', () => handle('SIGTERM'));
}

let faultFired = false;

/**
 * Fault injection for the test suite (test/faults.test.ts): with BERT_PROBE_FAULT=SIGNAL@TEXT
 * (e.g. `SIGTERM@train`), the first fault point whose name contains TEXT sends SIGNAL to this
 * process and waits for the handler, so a signal lands at a known stage of a run instead of at
 * a racy moment. Points: `stage:<name>` (ResultSet.stage), `results` (ResultSet.finish, after
 * summary.json), `shard:<k>` (extraction, after shard k is written). Unset: does nothing.
 */
export async function faultPoint(name: string): Promise<void> {
  const spec = process.env.BERT_PROBE_FAULT;
  if (!spec || faultFired) return;
  const m = /^(SIGINT|SIGTERM)@(.+)$/.exec(spec);
  if (!m || !name.includes(m[2]!)) return;
  faultFired = true;
  process.kill(process.pid, m[1] as InterruptSignal);
  await new Promise((r) => setTimeout(r, 5000)); // the handler exits the process first
}
