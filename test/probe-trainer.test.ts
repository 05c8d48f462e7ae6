/**
 * trainProbe (src/probes/trainer.ts): PyTorch's Adam step, the plateau schedule and early
 * stopping of trainWithEarlyStopping, dropout masks, clipping, step-based validation and a
 * select metric; and the structural probe on it follows today's tfjs/onnx trainer's dev-loss
 * trajectory from the same seed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import { structuralDistanceLoss, structuralDepthLoss } from '../src/probes/blocks.js';
import { compileProbe, initParams, type ProbeDefinition } from '../src/probes/probe-model.js';
import { fitStructuralProbe, makeBatch, type ProbeBatch, type ProbeExample, type StructuralKind } from '../src/probes/structural.js';
import { structuralOnnxAvailable } from '../src/probes/structural-onnx.js';
import { Float32Adam, clipGradNorm, trainProbe, type Batch } from '../src/probes/trainer.js';
import { treeDepths, treeDistances } from '../src/probes/trees.js';
import { mulberry32, shuffled } from '../src/util/random.js';

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

test('dev plateau: lr ×0.1 each epoch without improvement, stop after 5, keep the best epoch (as trainWithEarlyStopping)', async () => {
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

test('the same regimen as the tfjs trainWithEarlyStopping, epoch by epoch', async () => {
  const { tf } = await selectTfjsBackend();
  const { trainWithEarlyStopping } = await import('../src/probes/trainer.js');
  const targets = [3, 2.5, 4, 1];
  const devT = [0.4, 0.6];
  const x = tf.variable(tf.scalar(0));
  const old = trainWithEarlyStopping<{ a: number; t: number }>(tf, {
    variables: [x],
    loss: (b) => ({ loss: tf.tidy(() => { const d = x.sub(b.t); return d.square().mul(b.a).add(d.abs().mul(1 - b.a)); }) as import('@tensorflow/tfjs').Scalar, count: 2 }),
    trainBatches: (e) => targets.map((t, k) => ({ a: 1, t: t / (1 + e + k) })),
    devBatches: devT.map((t) => ({ a: 0, t })),
    learningRate: 0.05,
    maxEpochs: 12,
  });
  x.dispose();
  const probe = await compileProbe(scalarProbe);
  const params = [Float32Array.from([0])];
  const mine = await trainProbe({
    probe, params, learningRate: 0.05, maxEpochs: 12,
    train: (e) => batches(targets.map((t, k) => ({ feeds: { a: one(1), t: one(t / (1 + e + k)) }, count: 2 }))),
    dev: () => batches(devT.map((t) => ({ feeds: { a: one(0), t: one(t) }, count: 2 }))),
  });
  await probe.dispose();
  assert.equal(mine.epochs, old.epochs);
  assert.equal(mine.bestEpoch, old.bestEpoch);
  mine.history.forEach((h, k) => {
    const o = old.history[k]!;
    assert.ok(Math.abs(h.devLoss - o.devLoss) <= 1e-5 * Math.abs(o.devLoss), `epoch ${k} dev ${h.devLoss} vs ${o.devLoss}`);
    assert.ok(Math.abs(h.trainLoss - o.trainLoss) <= 1e-5 * Math.abs(o.trainLoss), `epoch ${k} train ${h.trainLoss} vs ${o.trainLoss}`);
    assert.equal(h.learningRate, o.learningRate);
    assert.equal(h.improved, o.improved);
  });
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

function randomExamples(rand: () => number, count: number, hidden: number, maxLen: number): ProbeExample[] {
  return Array.from({ length: count }, () => {
    const n = 1 + Math.floor(rand() * maxLen);
    const heads = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1 + Math.floor(rand() * i)));
    return { n, vectors: new Float32Array(n * hidden).map(() => rand() * 2 - 1), distances: treeDistances(heads), depths: treeDepths(heads) };
  });
}

/** The structural probe as a ProbeDefinition (what the platform's port does, in small). */
function structuralDefinition(kind: StructuralKind, hidden: number, rank: number): ProbeDefinition {
  const pair = kind === 'distance' ? ['b', 'len', 'len'] : ['b', 'len'];
  return {
    name: `structural_${kind}`,
    params: [{ name: 'proj', shape: [hidden, rank], init: { uniform: [-0.05, 0.05] } }],
    inputs: [
      { name: 'x', shape: ['words', hidden] },
      { name: 'rows', shape: ['bl'], type: 'int64' },
      { name: 'target', shape: pair },
      { name: 'mask', shape: pair },
      { name: 'norm', shape: ['b'] },
    ],
    build(g, p, i) {
      const inp = { x: i.x!, rows: i.rows!, target: i.target!, mask: i.mask!, norm: i.norm! };
      return { loss: (kind === 'distance' ? structuralDistanceLoss : structuralDepthLoss)(g, p.proj!, inp), outputs: { projected: g.matmul(i.x!, p.proj!) } };
    },
  };
}

function feedsOf(p: ProbeBatch, kind: StructuralKind, hidden: number): Batch {
  const shape = kind === 'distance' ? [p.b, p.len, p.len] : [p.b, p.len];
  return {
    count: p.b,
    feeds: {
      x: { data: p.x, dims: [p.words, hidden] },
      rows: { data: BigInt64Array.from(p.rows, (r) => BigInt(r)), dims: [p.b * p.len] },
      target: { data: p.target, dims: shape },
      mask: { data: p.mask, dims: shape },
      norm: { data: p.norm, dims: [p.b] },
    },
  };
}

test("structural probe on trainProbe follows today's trainer (onnx step, tfjs Adam): dev losses to 1e-4 relative", { skip: !structuralOnnxAvailable() && 'onnxruntime-node not loadable' }, async () => {
  const { tf } = await selectTfjsBackend();
  const hidden = 24;
  const rank = 12;
  const rand = mulberry32(9);
  const train = randomExamples(rand, 80, hidden, 14);
  const dev = randomExamples(rand, 30, hidden, 14);
  for (const kind of ['distance', 'depth'] as const) {
    const seed = 13;
    const old = fitStructuralProbe(tf, train, dev, { kind, hiddenSize: hidden, rank, seed, maxEpochs: 8, backend: 'onnx' });
    const oldProj = old.probe.proj.dataSync().slice();
    old.probe.dispose();
    const def = structuralDefinition(kind, hidden, rank);
    const probe = await compileProbe(def);
    const params = initParams(def, seed);
    // The same batches as fitStructuralProbe: shuffled per epoch from mulberry32(seed ^ 0x5bd1e995), 20 per batch; dev by length.
    const shuffleRand = mulberry32(seed ^ 0x5bd1e995);
    const toBatches = (items: readonly ProbeExample[]) => {
      const out: Batch[] = [];
      for (let i = 0; i < items.length; i += 20) out.push(feedsOf(makeBatch(items.slice(i, i + 20), kind, hidden), kind, hidden));
      return out;
    };
    const devBatches = toBatches([...dev].sort((a, b) => a.n - b.n));
    const r = await trainProbe({ probe, params, maxEpochs: 8, train: () => batches(toBatches(shuffled(train, shuffleRand))), dev: () => batches(devBatches) });
    await probe.dispose();
    assert.equal(r.epochs, old.epochs, `${kind}: epochs`);
    assert.equal(r.bestEpoch, old.bestEpoch, `${kind}: best epoch`);
    r.history.forEach((h, k) => {
      const o = old.history[k]!;
      assert.ok(Math.abs(h.devLoss - o.devLoss) <= 1e-4 * o.devLoss, `${kind} epoch ${k}: dev ${h.devLoss} vs ${o.devLoss}`);
      assert.ok(Math.abs(h.trainLoss - o.trainLoss) <= 1e-4 * o.trainLoss, `${kind} epoch ${k}: train ${h.trainLoss} vs ${o.trainLoss}`);
      assert.equal(h.learningRate, o.learningRate);
    });
    let maxRel = 0;
    for (let i = 0; i < oldProj.length; i++) maxRel = Math.max(maxRel, Math.abs(params[0]![i]! - oldProj[i]!));
    assert.ok(maxRel < 1e-4, `${kind}: final parameters differ by ${maxRel}`);
  }
});
