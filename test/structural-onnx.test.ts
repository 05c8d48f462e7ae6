/**
 * The onnxruntime training step of the structural probe (structural-onnx.ts) computes the same
 * batch loss and dL/dB as the tfjs path (structural.ts batchLoss, batchLossAndGrad), for both
 * probes, on random padded batches; and a probe trained either way ends at the same dev loss.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import { StructuralOnnxStep, structuralOnnxAvailable } from '../src/probes/structural-onnx.js';
import { batchLoss, batchLossAndGrad, fitStructuralProbe, makeBatch, type ProbeExample } from '../src/probes/structural.js';
import { mulberry32 } from '../src/util/random.js';
import { treeDepths, treeDistances } from '../src/probes/trees.js';
import { skipUnless } from './helpers.js';

function randomExamples(rand: () => number, count: number, hidden: number, maxLen: number): ProbeExample[] {
  return Array.from({ length: count }, () => {
    const n = 1 + Math.floor(rand() * maxLen);
    const heads = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1 + Math.floor(rand() * i)));
    return { n, vectors: new Float32Array(n * hidden).map(() => rand() * 2 - 1), distances: treeDistances(heads), depths: treeDepths(heads) };
  });
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-4 * scale + 1e-7, `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`);
}

test('onnx step: loss and gradient equal the tfjs batchLossAndGrad on random batches', { skip: skipUnless('onnxruntime-node', structuralOnnxAvailable()) }, async () => {
  const { tf } = await selectTfjsBackend();
  const rand = mulberry32(23);
  for (const [hidden, rank, count, maxLen] of [
    [32, 16, 5, 12],
    [48, 48, 20, 30],
    [20, 40, 1, 7],
  ] as const) {
    const proj = new Float32Array(hidden * rank).map(() => rand() * 0.2 - 0.1);
    const exs = randomExamples(rand, count, hidden, maxLen);
    for (const kind of ['distance', 'depth'] as const) {
      const p = makeBatch(exs, kind, hidden);
      const B = tf.tensor2d(proj, [hidden, rank]);
      const ref = batchLossAndGrad(tf, B, p, kind, hidden);
      const refDev = batchLoss(tf, B, p, kind, hidden);
      const step = new StructuralOnnxStep(kind, hidden, rank);
      const mine = step.lossAndGrad(proj, p);
      const what = `${kind} ${hidden}x${rank} b=${count}`;
      assertClose([mine.loss], ref.loss.dataSync(), `${what} loss`);
      assertClose([step.loss(proj, p)], refDev.dataSync(), `${what} dev loss`);
      assertClose(mine.grad, ref.grad.dataSync(), `${what} grad`);
      const x = exs[0]!;
      assertClose(step.project(proj, x.vectors, x.n), tf.tidy(() => tf.matMul(tf.tensor2d(x.vectors, [x.n, hidden]), B).dataSync()), `${what} projection`);
      tf.dispose([B, ref.loss, ref.grad, refDev]);
    }
  }
});

test('onnx and tfjs training follow the same path (same seed, same batches)', { skip: skipUnless('onnxruntime-node', structuralOnnxAvailable()) }, async () => {
  const { tf } = await selectTfjsBackend();
  const rand = mulberry32(5);
  const train = randomExamples(rand, 60, 16, 10);
  const dev = randomExamples(rand, 20, 16, 10);
  for (const kind of ['distance', 'depth'] as const) {
    const fits = (['tfjs', 'onnx'] as const).map((backend) => fitStructuralProbe(tf, train, dev, { kind, hiddenSize: 16, rank: 8, seed: 4, maxEpochs: 3, backend }));
    assert.equal(fits[0]!.backend, 'tfjs');
    assert.equal(fits[1]!.backend, 'onnx');
    assert.equal(fits[0]!.probe.onnx, undefined);
    assert.ok(fits[1]!.probe.onnx, 'the onnx-trained probe projects with onnx');
    fits[0]!.history.forEach((h, k) => {
      const o = fits[1]!.history[k]!;
      assert.ok(Math.abs(h.devLoss - o.devLoss) <= 1e-4 * Math.abs(h.devLoss), `${kind} epoch ${k} dev loss: ${h.devLoss} vs ${o.devLoss}`);
      assert.equal(h.learningRate, o.learningRate);
    });
    assertClose(fits[1]!.probe.depths(dev[0]!.vectors, dev[0]!.n), fits[0]!.probe.depths(dev[0]!.vectors, dev[0]!.n), `${kind} predicted depths`);
    for (const f of fits) f.probe.dispose();
  }
});
