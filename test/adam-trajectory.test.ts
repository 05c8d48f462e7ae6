/**
 * Float32Adam (src/probes/trainer.ts, the one Adam of every probe) follows torch.optim.Adam over
 * 12 steps, with tiny, large, zero, one-signed and stopping gradients and a learning-rate cut
 * after step 6 (issue 16: Adam was pinned at step 1 only). The trajectory was computed by PyTorch
 * (test/fixtures/adam/torch_adam.py) and is committed as test/fixtures/adam/trajectory.json.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Float32Adam } from '../src/probes/trainer.js';
import { repoRoot } from './helpers.js';

const traj = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'adam', 'trajectory.json'), 'utf8')) as {
  initial: number[];
  gradients: number[][];
  learning_rates: number[];
  params_after_step: number[][];
};
// float32 arithmetic on both sides; a wrong rule (no bias correction, ε inside the root, a missed
// lr cut) moves weights by ~1e-3 or more.
const TOL = 2e-6;

function assertStep(got: ArrayLike<number>, step: number): void {
  const want = traj.params_after_step[step]!;
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= TOL, `step ${step + 1}, weight ${i}: ${got[i]}, torch ${want[i]}`);
  }
}

test('Float32Adam follows torch.optim.Adam for 12 steps (lr cut after step 6)', () => {
  const x = Float32Array.from(traj.initial);
  const adam = new Float32Adam([x]);
  traj.gradients.forEach((g, step) => {
    adam.learningRate = traj.learning_rates[step]!;
    adam.step([Float32Array.from(g)]);
    assertStep(x, step);
  });
  assert.equal(adam.steps, 12);
});

test('Float32Adam refuses a gradient of the wrong size', () => {
  assert.throws(() => new Float32Adam([new Float32Array(3)]).step([new Float32Array(2)]), /Adam: gradient 0 has 2 values for 3 parameters/);
});
