/** The shared probe trainer: PyTorch's Adam step, ReduceLROnPlateau(patience 0), early stopping. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import { Adam, trainWithEarlyStopping } from '../src/probes/trainer.js';

test('Adam: the first bias-corrected step moves each weight by lr against the gradient sign', async () => {
  const { tf } = await selectTfjsBackend();
  const x = tf.variable(tf.tensor1d([0, 5]));
  const adam = new Adam(tf, [x], 0.1);
  const g = tf.tensor1d([-6, 4]);
  adam.step([g]);
  const v = x.dataSync();
  assert.ok(Math.abs(v[0]! - 0.1) < 1e-6 && Math.abs(v[1]! - 4.9) < 1e-6, `got ${[...v]}`);
  adam.dispose();
  x.dispose();
  g.dispose();
});

test('dev plateau: lr ×0.1 each epoch without improvement, stop after 5, keep the best epoch', async () => {
  const { tf } = await selectTfjsBackend();
  const x = tf.variable(tf.scalar(0));
  const seen: number[] = [];
  // Train batches pull x towards 3; the dev loss is |x − 0.05|, best near epoch 0, then worse.
  const r = trainWithEarlyStopping<'train' | 'dev'>(tf, {
    variables: [x],
    loss: (b) => ({ loss: (b === 'train' ? x.sub(3).square() : x.sub(0.05).abs()) as import('@tensorflow/tfjs').Scalar, count: 1 }),
    trainBatches: () => ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'train'],
    devBatches: ['dev'],
    learningRate: 0.01,
    onEpoch: () => seen.push(x.dataSync()[0]!),
  });
  // Epoch 0: x ≈ 0.1 (10 steps of ≈ lr); every later epoch moves x further from 0.05.
  assert.ok(seen[0]! > 0.05 && seen[0]! < 0.11, `x after epoch 0: ${seen[0]}`);
  assert.equal(r.bestEpoch, 0);
  assert.equal(r.epochs, 6, 'stopped 5 epochs after the best');
  assert.deepEqual(r.history.map((h) => h.improved), [true, false, false, false, false, false]);
  // The rate recorded is the one an epoch trained with: epoch 1 still has 0.01, its dev loss
  // does not improve, so epoch 2 trains with 0.001, and so on.
  const lrs = r.history.map((h) => h.learningRate);
  assert.equal(lrs[1], lrs[0]);
  for (let k = 2; k < lrs.length; k++) assert.ok(Math.abs(lrs[k]! - lrs[k - 1]! * 0.1) < 1e-15, `lr ${lrs}`);
  assert.ok(seen[5]! > seen[0]!);
  assert.equal(x.dataSync()[0], seen[0], 'best-epoch parameters restored');
  x.dispose();
});
