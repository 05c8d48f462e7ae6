/**
 * trainProbe (src/probes/trainer.ts): PyTorch's Adam step, the plateau schedule and early
 * stopping of the structural-probes regimen, dropout masks, clipping, step-based validation and
 * a select metric. (The structural probe on it reproducing the pre-issue-9 trainer's dev-loss
 * trajectories: test/structural-runner.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileProbe, initParams, type ProbeDefinition } from '../src/probes/probe-model.js';
import { Float32Adam, clipGradNorm, trainProbe, workerAvailable, type Batch } from '../src/probes/trainer.js';

test('Float32Adam: the first bias-corrected step moves each weight by lr against the gradient sign; later steps as torch', () => {
  const x = Float32Array.from([0, 5]);
  const adam = new Float32Adam([x], 0.1);
  adam.step([Float32Array.from([-6, 4])]);
  assert.ok(Math.abs(x[0]! - 0.1) < 1e-6 && Math.abs(x[1]! - 4.9) < 1e-6, `got ${[...x]}`);
  // Second step by the formula, in float64.
  adam.step([Float32Array.from([2, 4])]);
  const m = 0.9 * 0.1 * -6 + 0.1 * 2;
  const v = 0.999 * 0.001 * 36 + 0.001 * 4;
  const want = 0.1 - ((0.1 / (1 - 0.81)) * m) / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** 2) + 1e-8);
  assert.ok(Math.abs(x[0]! - want) < 1e-6, `${x[0]} vs ${want}`);
});

test('Float32Adam amsgrad: the denominator uses the running maximum of v (torch amsgrad=True)', () => {
  const grads = [10, 0.5, 0, -0.2, 0, 0.1];
  // torch's rule in float64: amsgrad keeps max(v) for the denominator (β2 0.5, so v decays fast).
  const reference = (amsgrad: boolean) => {
    let [p, m, v, vmax] = [0, 0, 0, 0];
    grads.forEach((g, k) => {
      const t = k + 1;
      m = 0.9 * m + 0.1 * g;
      v = 0.5 * v + 0.5 * g * g;
      vmax = Math.max(vmax, v);
      p -= ((0.1 / (1 - 0.9 ** t)) * m) / (Math.sqrt(amsgrad ? vmax : v) / Math.sqrt(1 - 0.5 ** t) + 1e-8);
    });
    return p;
  };
  for (const amsgrad of [true, false]) {
    const x = Float32Array.from([0]);
    const adam = new Float32Adam([x], 0.1, 0.9, 0.5, 1e-8, amsgrad);
    for (const g of grads) adam.step([Float32Array.from([g])]);
    assert.ok(Math.abs(x[0]! - reference(amsgrad)) < 1e-5, `amsgrad ${amsgrad}: ${x[0]} vs ${reference(amsgrad)}`);
  }
  assert.ok(Math.abs(reference(true) - reference(false)) > 1e-3, 'the two rules differ here');
});

test('clipGradNorm scales by max/(norm + 1e-6) only above the limit', () => {
  const g = [Float32Array.from([3, 0]), Float32Array.from([4])];
  assert.equal(clipGradNorm(g, 10), 5);
  assert.deepEqual([...g[0]!, ...g[1]!], [3, 0, 4]);
  clipGradNorm(g, 1);
  assert.ok(Math.abs(g[0]![0]! - 0.6) < 1e-6 && Math.abs(g[1]![0]! - 0.8) < 1e-6);
});

/** A one-parameter probe: loss = a·(x − t)² + (1 − a)·|x − t|, a and t fed per batch. */
const scalarProbe: ProbeDefinition = {
  name: 'scalar',
  params: [{ name: 'x', shape: [1], init: 'zeros' }],
  inputs: [{ name: 'a', shape: [1] }, { name: 't', shape: [1] }],
  build(g, p, i) {
    const d = g.sub(p.x!, i.t!);
    const loss = g.reduceSum(g.add(g.mul(i.a!, g.mul(d, d)), g.mul(g.sub(g.constant([1]), i.a!), g.abs(d))), [0]);
    return { loss, outputs: { value: g.mul(p.x!, g.constant([1])) } };
  },
};

const one = (v: number) => ({ data: Float32Array.from([v]), dims: [1] });
async function* batches(list: Batch[]): AsyncIterable<Batch> {
  yield* list;
}

test('dev plateau: lr ×0.1 each epoch without improvement, stop after 5, keep the best epoch', async () => {
  const probe = await compileProbe(scalarProbe);
  const params = initParams(scalarProbe, 1);
  const seen: number[] = [];
  const trainBatch: Batch = { feeds: { a: one(1), t: one(3) }, count: 1 };
  const r = await trainProbe({
    probe, params, learningRate: 0.01,
    train: () => batches(Array.from({ length: 10 }, () => trainBatch)),
    dev: () => batches([{ feeds: { a: one(0), t: one(0.05) }, count: 1 }]),
    onEpoch: () => seen.push(params[0]![0]!),
  });
  assert.ok(seen[0]! > 0.05 && seen[0]! < 0.11, `x after epoch 0: ${seen[0]}`);
  assert.equal(r.bestEpoch, 0);
  assert.equal(r.epochs, 6, 'stopped 5 epochs after the best');
  assert.deepEqual(r.history.map((h) => h.improved), [true, false, false, false, false, false]);
  const lrs = r.history.map((h) => h.learningRate);
  assert.equal(lrs[1], lrs[0]);
  for (let k = 2; k < lrs.length; k++) assert.ok(Math.abs(lrs[k]! - lrs[k - 1]! * 0.1) < 1e-15, `lr ${lrs}`);
  assert.equal(params[0]![0], seen[0], 'best-epoch parameters restored');
  assert.equal(r.history[0]!.step, 10);
  await probe.dispose();
});

test('stopLearningRate ends training once the plateau schedule cuts the rate below it', async () => {
  const probe = await compileProbe(scalarProbe);
  const params = initParams(scalarProbe, 1);
  const r = await trainProbe({
    probe, params, learningRate: 0.01, lrFactor: 0.5, patience: 100, stopLearningRate: 0.002,
    train: () => batches(Array.from({ length: 10 }, () => ({ feeds: { a: one(1), t: one(3) }, count: 1 }))),
    dev: () => batches([{ feeds: { a: one(0), t: one(0.05) }, count: 1 }]),
  });
  // Rates 0.01, 0.01, 0.005, 0.0025, then 0.00125 < 0.002: stop after the 4th validation.
  assert.deepEqual(r.history.map((h) => h.learningRate), [0.01, 0.01, 0.005, 0.0025]);
  assert.equal(r.epochs, 4);
  await probe.dispose();
});

test('validateEvery, select (higher is better) and dropout masks drawn from the seed', async () => {
  const def: ProbeDefinition = {
    name: 'drop',
    params: [{ name: 'w', shape: [3, 1], init: { uniform: [-0.1, 0.1] } }],
    inputs: [{ name: 'x', shape: ['n', 3] }, { name: 'y', shape: ['n', 1] }],
    build(g, p, i) {
      const pred = g.matmul(g.dropout(i.x!, 0.5, 'dx'), p.w!);
      const d = g.sub(pred, i.y!);
      return { loss: g.reduceMean(g.mul(d, d), [0, 1]), outputs: { pred } };
    },
  };
  const probe = await compileProbe(def);
  assert.deepEqual(probe.masks, [{ name: 'dx', shape: ['n', 3], p: 0.5 }]);
  const x = Float32Array.from([1, 2, 3, 0, 1, 0, 2, 0, 1, 1, 1, 1]);
  const y = Float32Array.from([1, 0, 1, 2]);
  const batch: Batch = { feeds: { x: { data: x, dims: [4, 3] }, y: { data: y, dims: [4, 1] } }, count: 4 };
  const run = async (seed: number) => {
    const params = initParams(def, 3);
    const metrics: number[] = [];
    const r = await trainProbe({
      probe, params, seed, validateEvery: 3, maxEpochs: 4, patience: 100,
      train: () => batches([batch, batch, batch, batch, batch]),
      dev: () => batches([batch]),
      select: async (p) => -Math.abs(p[0]![0]! - 0.5),
      onEpoch: (e) => metrics.push(e.metric!),
    });
    return { r, params, metrics };
  };
  const a = await run(7);
  const b = await run(7);
  const c = await run(8);
  // 4 epochs × 5 steps = 20 steps, validated at steps 3, 6, …, 18.
  assert.deepEqual(a.r.history.map((h) => h.step), [3, 6, 9, 12, 15, 18]);
  assert.equal(a.r.epochs, 6);
  assert.deepEqual(a.metrics, b.metrics, 'same seed, same masks');
  assert.notDeepEqual(a.metrics, c.metrics, 'another seed, other masks');
  const best = Math.max(...a.metrics);
  assert.equal(a.r.history[a.r.bestEpoch]!.metric, best);
  assert.ok(Math.abs(-Math.abs(a.params[0]![0]! - 0.5) - best) < 1e-7, 'best parameters (by the metric) restored');
  const pred = await probe.predict(a.params, batch.feeds);
  assert.deepEqual(pred.pred!.dims, [4, 1]);
  await probe.dispose();
});

// The structural probe on trainProbe against the pre-issue-9 trainer's dev-loss trajectory:
// test/structural-runner.test.ts (fixture test/fixtures/structural-trajectory.json, recorded from that trainer).

test('steps in a worker thread (transferred batches, queued two ahead) train exactly as steps in this thread', async (t) => {
  if (!workerAvailable) {
    t.skip('run from TypeScript sources: trainProbe steps in this thread only');
    return;
  }
  const def: ProbeDefinition = {
    name: 'lin',
    params: [{ name: 'w', shape: [4, 1], init: { uniform: [-0.5, 0.5] } }],
    inputs: [{ name: 'x', shape: ['n', 4] }, { name: 'y', shape: ['n', 1] }],
    build(g, p, i) {
      const d = g.sub(g.matmul(i.x!, p.w!), i.y!);
      return { loss: g.reduceMean(g.mul(d, d), [0, 1]), outputs: {} };
    },
  };
  const probe = await compileProbe(def);
  // y = x·[1, −2, 0.5, 3]: learnable, so the dev loss falls.
  const data = Array.from({ length: 12 }, (_, k) => {
    const x = Float32Array.from({ length: 12 }, (_, j) => Math.sin(k * 12 + j));
    return { x, y: Float32Array.from({ length: 3 }, (_, r) => x[r * 4]! - 2 * x[r * 4 + 1]! + 0.5 * x[r * 4 + 2]! + 3 * x[r * 4 + 3]!) };
  });
  const run = async (worker: boolean) => {
    const params = initParams(def, 3);
    const seen: number[] = [];
    const r = await trainProbe({
      probe, params, worker, learningRate: 0.05, maxEpochs: 6, patience: 10,
      // fresh arrays each epoch, so the worker may take them
      train: () => batches(data.map((d) => ({ feeds: { x: { data: d.x.slice(), dims: [3, 4] }, y: { data: d.y.slice(), dims: [3, 1] } }, count: 3, transfer: true }))),
      dev: () => batches(data.slice(0, 2).map((d) => ({ feeds: { x: { data: d.x, dims: [3, 4] }, y: { data: d.y, dims: [3, 1] } }, count: 3 }))),
      onEpoch: () => seen.push(params[0]![0]!),
    });
    return { params: [...params[0]!], history: r.history.map((h) => [h.trainLoss, h.devLoss, h.learningRate]), seen };
  };
  const local = await run(false);
  const inWorker = await run(true);
  assert.deepEqual(inWorker, local);
  assert.ok(local.history[5]![1]! < local.history[0]![1]!, 'it learns');

  // Recycled batches: each batch's x buffer comes back (from the worker: moved there and back)
  // once its step or dev loss is done, whole and holding what was sent, and training is unchanged.
  for (const worker of [false, true]) {
    const params = initParams(def, 3);
    const given: { bytes: number; first: number }[] = [];
    const give = (bufs: ArrayBuffer[]) => bufs.forEach((b) => given.push({ bytes: b.byteLength, first: new Float32Array(b)[0]! }));
    // x in a buffer larger than the batch (as BufferPool hands out): the whole buffer travels.
    const xOf = (x: Float32Array) => {
      const view = new Float32Array(new ArrayBuffer(256), 0, x.length);
      view.set(x);
      return view;
    };
    const recycle = { feeds: ['x'], give };
    const r = await trainProbe({
      probe, params, worker, learningRate: 0.05, maxEpochs: 6, patience: 10,
      train: () => batches(data.map((d) => ({ feeds: { x: { data: xOf(d.x), dims: [3, 4] }, y: { data: d.y.slice(), dims: [3, 1] } }, count: 3, transfer: true, recycle }))),
      dev: () => batches(data.slice(0, 2).map((d) => ({ feeds: { x: { data: xOf(d.x), dims: [3, 4] }, y: { data: d.y, dims: [3, 1] } }, count: 3, recycle }))),
    });
    assert.deepEqual([...params[0]!], local.params, `recycled batches (worker ${worker}) train the same`);
    assert.equal(r.epochs, 6);
    assert.equal(given.length, 6 * (12 + 2), `one buffer back per train step and dev batch (worker ${worker})`);
    assert.ok(given.every((g) => g.bytes === 256), 'whole buffers, not detached');
    assert.deepEqual(given.slice(0, 12).map((g) => g.first), data.map((d) => d.x[0]!), 'each holding its batch');
  }
  await probe.dispose();
});

test('lossAndGrad writes the gradients into arrays given (pre-allocated outputs), equal to those it returns otherwise', async () => {
  const def: ProbeDefinition = {
    name: 'two',
    params: [{ name: 'w', shape: [3, 2], init: { uniform: [-0.5, 0.5] } }, { name: 'b', shape: [2], init: { uniform: [-0.5, 0.5] } }],
    inputs: [{ name: 'x', shape: ['n', 3] }],
    build(g, p, i) {
      const y = g.add(g.matmul(i.x!, p.w!), p.b!);
      return { loss: g.reduceSum(g.mul(y, y), [0, 1]), outputs: {} };
    },
  };
  const probe = await compileProbe(def, { threads: 1 });
  const params = initParams(def, 5);
  const feeds = { x: { data: Float32Array.from([1, 2, 3, -1, 0.5, 2]), dims: [2, 3] } };
  const plain = await probe.lossAndGrad(params, feeds);
  const into = [new Float32Array(6).fill(NaN), new Float32Array(2).fill(NaN)];
  const r = await probe.lossAndGrad(params, feeds, into);
  assert.equal(r.loss, plain.loss);
  assert.ok(r.grads[0] === into[0] && r.grads[1] === into[1], 'the arrays given are returned');
  assert.deepEqual(into.map((a) => [...a]), plain.grads.map((a) => [...a]));
  await assert.rejects(probe.lossAndGrad(params, feeds, [into[0]!]), /1 gradient arrays for 2 parameters/);
  await probe.dispose();
});

test('Float32Adam: a gradient already in its slot (gradientSlots) steps as one passed in', () => {
  const g = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i));
  const a = new Float32Adam([Float32Array.from({ length: 37 }, (_, i) => i / 10)], 0.01, 0.9, 0.999, 1e-8, false, true);
  const b = new Float32Adam([Float32Array.from({ length: 37 }, (_, i) => i / 10)], 0.01, 0.9, 0.999, 1e-8, false, true);
  const slots = b.gradientSlots;
  if (!slots) return; // no WebAssembly SIMD here: no slots, step() copies
  assert.equal(slots[0]!.length, 37);
  for (let k = 0; k < 3; k++) {
    a.step([g]);
    slots[0]!.set(g);
    b.step(slots);
  }
  assert.deepEqual([...b.params[0]!], [...a.params[0]!]);
});
