/**
 * A probe's optimiser steps on a worker thread (trainer.ts WorkerStepper): the graphs opened
 * here, the parameters and Adam state kept here, a LocalStepper doing the work. Protocol:
 * workerData is a StepperInit; posts {type: 'ready'} or {type: 'error', message} once, then
 * answers each StepperRequest in order with {id, loss} / {id, values} / {id, error}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openProbeGraphs } from './probe-model.js';
import { LocalStepper, type StepperInit, type StepperReply, type StepperRequest } from './trainer.js';

async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as StepperInit;
  let stepper: LocalStepper;
  try {
    stepper = new LocalStepper(await openProbeGraphs(init.graphs, init.options), init.params, init.stepper);
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error).message } satisfies StepperReply);
    return;
  }
  // One request at a time, in arrival order: a step must finish before the next reads the parameters.
  let queue = Promise.resolve();
  port.on('message', (req: StepperRequest) => {
    queue = queue.then(async () => {
      try {
        if (req.op === 'values') port.postMessage({ id: req.id, values: (await stepper.values()).map((p) => p.slice()) } satisfies StepperReply);
        else {
          // The buffers of the feeds named in giveBack go back to the caller (moved, not copied).
          const a = req.op === 'step' ? await stepper.step(req.feeds, req.learningRate, false, req.giveBack) : await stepper.loss(req.feeds, false, req.giveBack);
          port.postMessage({ id: req.id, loss: a.loss, buffers: a.buffers } satisfies StepperReply, a.buffers);
        }
      } catch (err) {
        port.postMessage({ id: req.id, error: (err as Error).message } satisfies StepperReply);
      }
    });
  });
  port.postMessage({ type: 'ready' } satisfies StepperReply);
}

void main();
