/**
 * Adam's SIMD loop (src/probes/adam.wat, embedded in adam-wasm.ts): the embedded bytes are the
 * .wat compiled by wabt, and Float32Adam's updates equal torch's rule computed in float64 to
 * float32 precision over many steps, at sizes that are and are not whole lanes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import wabtInit from 'wabt';
import { ADAM_WASM_BASE64 } from '../src/probes/adam-wasm.js';
import { Float32Adam } from '../src/probes/trainer.js';
import { mulberry32 } from '../src/util/random.js';
import { repoRoot } from './helpers.js';

test('adam-wasm.ts holds adam.wat compiled (npm run build:wasm)', async () => {
  const wabt = await wabtInit();
  const wat = readFileSync(join(repoRoot, 'src', 'probes', 'adam.wat'), 'utf8');
  const mod = wabt.parseWat('adam.wat', wat, { simd: true });
  const bytes = Buffer.from(mod.toBinary({}).buffer);
  mod.destroy();
  assert.equal(bytes.toString('base64'), ADAM_WASM_BASE64);
});

test('Float32Adam (SIMD loop) follows torch Adam in float64 to float32 precision, 200 steps, ragged sizes', () => {
  const rand = mulberry32(9);
  for (const sizes of [[7], [768, 3], [1, 4, 5]]) {
    const params = sizes.map((n) => Float32Array.from({ length: n }, () => rand() * 2 - 1));
    const ref = params.map((p) => Float64Array.from(p));
    const m = sizes.map((n) => new Float64Array(n));
    const v = sizes.map((n) => new Float64Array(n));
    const adam = new Float32Adam(params, 0.01);
    for (let t = 1; t <= 200; t++) {
      const grads = sizes.map((n) => Float32Array.from({ length: n }, () => rand() - 0.5));
      if (t === 120) adam.learningRate = 0.001;
      adam.step(grads);
      const lr = t >= 120 ? 0.001 : 0.01;
      ref.forEach((p, k) => {
        for (let i = 0; i < p.length; i++) {
          const g = grads[k]![i]!;
          m[k]![i] = 0.9 * m[k]![i]! + 0.1 * g;
          v[k]![i] = 0.999 * v[k]![i]! + 0.001 * g * g;
          p[i] = p[i]! - ((lr / (1 - 0.9 ** t)) * m[k]![i]!) / (Math.sqrt(v[k]![i]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
        }
      });
    }
    ref.forEach((p, k) => {
      for (let i = 0; i < p.length; i++) assert.ok(Math.abs(params[k]![i]! - p[i]!) < 2e-6, `sizes ${sizes} param ${k}[${i}]: ${params[k]![i]} vs ${p[i]}`);
    });
  }
});

test('Float32Adam with ownParams keeps the parameters in its own memory: the same steps, the given arrays untouched', () => {
  const rand = mulberry32(11);
  const sizes = [768, 5];
  const init = sizes.map((n) => Float32Array.from({ length: n }, () => rand() * 2 - 1));
  const given = init.map((p) => p.slice());
  const shared = init.map((p) => p.slice());
  const owning = new Float32Adam(given, 0.01, 0.9, 0.999, 1e-8, false, true);
  const plain = new Float32Adam(shared, 0.01);
  assert.notEqual(owning.params[0], given[0], 'SIMD Adam hands out views into its memory');
  assert.equal(plain.params[0], shared[0], 'without ownParams it updates the arrays given');
  for (let t = 0; t < 50; t++) {
    const grads = sizes.map((n) => Float32Array.from({ length: n }, () => rand() - 0.5));
    owning.step(grads);
    plain.step(grads);
  }
  owning.params.forEach((p, k) => assert.deepEqual(p, shared[k]));
  given.forEach((p, k) => assert.deepEqual(p, init[k]));
});
