import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { readSafetensors, writeSafetensors, readSafetensorsHeader } from '../src/model/safetensors.js';
import { InputError } from '../src/util/errors.js';
import { fixturesDir, tempDir } from './helpers.js';

test('round-trips F32, F16, I32 and I64 with metadata', () => {
  const dir = tempDir();
  const p = join(dir, 'x.safetensors');
  writeSafetensors(p, {
    a: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-3, 7]) },
    h: { dtype: 'F16', shape: [3], data: Float32Array.from([0.5, -1.25, 65504]) },
    i: { dtype: 'I32', shape: [2], data: Int32Array.from([-4, 9]) },
    l: { dtype: 'I64', shape: [1], data: [1234567] },
  }, { note: 'hello' });
  const { tensors, metadata } = readSafetensors(p);
  assert.equal(metadata.note, 'hello');
  assert.deepEqual([...tensors.get('a')!.data], [1, -2, 3.5, 0, Math.fround(1e-3), 7]);
  assert.deepEqual([...tensors.get('h')!.data], [0.5, -1.25, 65504]);
  assert.deepEqual([...tensors.get('i')!.data], [-4, 9]);
  assert.deepEqual([...tensors.get('l')!.data], [1234567]);
  assert.equal((readFileSync(p).readBigUInt64LE(0) % 8n), 0n);
});

test('reads the fixture reference with its metadata', () => {
  const { tensors, metadata } = readSafetensors(join(fixturesDir, 'tiny-bert-reference.safetensors'), (n) => n === 'input_ids');
  assert.deepEqual(tensors.get('input_ids')!.shape, [6, 14]);
  assert.equal(tensors.get('input_ids')!.data[0], 101);
  assert.equal(JSON.parse(metadata.sentences!).length, 6);
});

test('a truncated file is refused with the file and tensor named', () => {
  const dir = tempDir();
  const p = join(dir, 'x.safetensors');
  writeSafetensors(p, { weight: { dtype: 'F32', shape: [64], data: new Float32Array(64) } });
  const bytes = readFileSync(p);
  writeFileSync(p, bytes.subarray(0, bytes.length - 10));
  assert.throws(() => readSafetensorsHeader(p), (e: unknown) => e instanceof InputError && /weight/.test(e.message) && e.message.includes(p));
});
