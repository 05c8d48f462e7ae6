/**
 * On a signal the CLI lets worker threads finish the request they run before the process exits
 * (util/worker-client.ts quiesceWorkers): exiting under a worker inside onnxruntime aborted the
 * process (SIGABRT) instead of exiting 130/143. A busy loop in a worker stands in for the native call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quiesceWorkers, WorkerClient } from '../src/util/worker-client.js';

const SCRIPT = `import { parentPort } from 'node:worker_threads';
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', (m) => { const end = Date.now() + m.ms; while (Date.now() < end); parentPort.postMessage({ id: m.id, done: true }); });`;
const URL_ = new URL(`data:text/javascript,${encodeURIComponent(SCRIPT)}`);

test('quiesceWorkers: waits for the requests workers run (up to its limit); later requests are never sent', async () => {
  const short = await WorkerClient.start<{ done: boolean }>(URL_, null, 'short');
  const long = await WorkerClient.start<{ done: boolean }>(URL_, null, 'long');
  let shortDone = false;
  let longDone = false;
  void short.call({ ms: 300 }).then(() => (shortDone = true));
  void long.call({ ms: 4000 }).then(() => (longDone = true));
  const t0 = performance.now();
  await quiesceWorkers(1000);
  const waited = performance.now() - t0;
  assert.ok(shortDone, 'the 300 ms request finished before quiesceWorkers returned');
  assert.ok(!longDone, 'the 4 s request is still running');
  assert.ok(waited >= 900 && waited < 3500, `quiesceWorkers returned after ${waited.toFixed(0)} ms (limit 1000)`);
  let settled = false;
  void short.call({ ms: 1 }).then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!settled, 'a request made while closing is never sent');
  await short.terminate();
  await long.terminate();
});
