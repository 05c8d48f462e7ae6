import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, truncateSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readConfigFile } from '../src/model/config.js';
import { loadModelDir } from '../src/model/load.js';
import { readTorchPickle } from '../src/model/pickle.js';
import { readPytorchBin } from '../src/model/pytorch.js';
import { encodeSafetensors } from '../src/model/safetensors.js';
import { canonicalWeights } from '../src/model/weight-names.js';
import { loadWeights } from '../src/model/weights.js';
import { InputError } from '../src/util/errors.js';
import { fixturesDir, tempDir } from './helpers.js';
import { f32Bytes, legacyMagicPickle, P, statePickle, tinyConfig, writeTinyCheckpoint, zipStored } from './model-craft.js';

const isInputError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof InputError, `expected InputError, got ${String(e)}`);
  assert.match(e.message, re);
  return true;
};

test('all three fixtures load to the same canonical names; legacy .bin equals the safetensors weights', async () => {
  const st = await loadModelDir(join(fixturesDir, 'tiny-bert'));
  const bin = await loadModelDir(join(fixturesDir, 'tiny-bert-legacy-bin'));
  const f16 = await loadModelDir(join(fixturesDir, 'tiny-bert-model-only-f16'));
  const names = canonicalWeights(st.config).map((s) => s.name);
  assert.deepEqual([...st.weights.keys()].sort(), [...names].sort());
  assert.deepEqual([...bin.weights.keys()].sort(), [...names].sort());
  assert.deepEqual([...f16.weights.keys()].sort(), names.filter((n) => !n.startsWith('cls.')).sort());
  assert.equal(st.hasMlmHead, true);
  assert.equal(bin.hasMlmHead, true);
  assert.equal(f16.hasMlmHead, false);
  assert.equal(st.source.format, 'safetensors');
  assert.equal(bin.source.format, 'pytorch');
  assert.equal(f16.source.sourceDtype, 'F16');
  for (const [name, t] of st.weights) {
    assert.deepEqual(bin.weights.get(name)!.shape, t.shape, name);
    assert.deepEqual(bin.weights.get(name)!.data, t.data, `${name}: .bin (gamma/beta, tied decoder) equals safetensors`);
    const h = f16.weights.get(name);
    if (h) for (let i = 0; i < t.data.length; i += 97) assert.ok(Math.abs(h.data[i]! - t.data[i]!) <= 1e-3 * Math.max(1, Math.abs(t.data[i]!)), name);
  }
  assert.match(st.source.weightsSha256, /^[0-9a-f]{64}$/);
  assert.notEqual(st.source.weightsSha256, bin.source.weightsSha256);
});

test('a crafted pytorch_model.bin whose pickle calls os.system is refused, nothing runs', async () => {
  const dir = tempDir();
  const marker = join(dir, 'pwned');
  const pkl = Buffer.concat([P.proto(), P.global('os', 'system'), P.str(`touch ${marker}`), Buffer.from([0x85]), P.reduce(), P.stop()]);
  writeFileSync(join(dir, 'pytorch_model.bin'), zipStored([['archive/data.pkl', pkl], ['archive/version', Buffer.from('3\n')]]));
  await assert.rejects(readPytorchBin(join(dir, 'pytorch_model.bin')), isInputError(/global 'os\.system'/));
  assert.equal(existsSync(marker), false);
  // also refused: the storage loader that unpickles nested bytes, and builtins
  for (const [m, n] of [['torch.storage', '_load_from_bytes'], ['builtins', 'eval'], ['__builtin__', 'getattr']] as const) {
    assert.throws(() => readTorchPickle(Buffer.concat([P.proto(), P.global(m, n), P.stop()]), 'x.pkl'), isInputError(new RegExp(`${m}\\.${n}`)));
  }
});

test('the restricted pickle reader rebuilds strided tensors from storages', async () => {
  const dir = tempDir();
  // a 2x3 tensor stored transposed (stride [1, 2]) and one at an offset into a shared-size storage
  const pkl = statePickle([
    { name: 'w', key: '0', numel: 6, size: [2, 3], stride: [1, 2] },
    { name: 'b', key: '1', numel: 4, size: [2], stride: [1], offset: 2 },
  ]);
  writeFileSync(join(dir, 'm.bin'), zipStored([['m/data.pkl', pkl], ['m/data/0', f32Bytes([0, 1, 2, 3, 4, 5])], ['m/data/1', f32Bytes([9, 8, 7, 6])]]));
  const t = await readPytorchBin(join(dir, 'm.bin'));
  assert.deepEqual(t.get('w')!.shape, [2, 3]);
  assert.deepEqual([...t.get('w')!.data], [0, 2, 4, 1, 3, 5]);
  assert.deepEqual([...t.get('b')!.data], [7, 6]);
});

test('truncated safetensors → InputError naming the file and the tensor', async () => {
  const dir = tempDir();
  writeTinyCheckpoint(dir);
  const file = join(dir, 'model.safetensors');
  truncateSync(file, readFileSync(file).length - 10);
  await assert.rejects(loadModelDir(dir), isInputError(/model\.safetensors.*tensor '[\w.]+' is truncated/s));
});

test('missing config.json → InputError naming it', async () => {
  const dir = tempDir();
  writeTinyCheckpoint(dir);
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, '');
  await assert.rejects(loadModelDir(dir), isInputError(/config\.json/));
  const dir2 = tempDir();
  writeTinyCheckpoint(dir2);
  const { rmSync } = await import('node:fs');
  rmSync(join(dir2, 'config.json'));
  await assert.rejects(loadModelDir(dir2), isInputError(/config\.json.*missing/s));
});

test('wrong shapes, missing and unexpected tensors are reported by name', async () => {
  const c = tinyConfig();
  const dir = tempDir();
  const w = writeTinyCheckpoint(dir, { rename: (n) => (n === 'encoder.layer.1.intermediate.dense.weight' ? null : n), extra: { 'encoder.layer.1.intermediate.dense.weight': { dtype: 'F32', shape: [16, 4], data: new Float32Array(64) } } });
  await assert.rejects(loadWeights(dir, c), isInputError(/model\.safetensors: tensor 'encoder\.layer\.1\.intermediate\.dense\.weight' has the wrong shape[\s\S]*expected: \[16, 8\][\s\S]*found: +\[16, 4\]/));
  const dir2 = tempDir();
  writeTinyCheckpoint(dir2, { weights: w, rename: (n) => (n === 'encoder.layer.0.output.dense.bias' ? null : n) });
  await assert.rejects(loadWeights(dir2, c), isInputError(/missing.*encoder\.layer\.0\.output\.dense\.bias/));
  const dir3 = tempDir();
  writeTinyCheckpoint(dir3, { weights: w, extra: { 'encoder.layer.2.output.dense.bias': { dtype: 'F32', shape: [8], data: new Float32Array(8) } } });
  await assert.rejects(loadWeights(dir3, c), isInputError(/unexpected.*encoder\.layer\.2\.output\.dense\.bias/));
});

test('BertForPreTraining layout: bert. prefix, gamma/beta, NSP head dropped, untied decoder kept', async () => {
  const c = tinyConfig();
  const dir = tempDir();
  const w = writeTinyCheckpoint(dir, {
    rename: (n) => (n.startsWith('cls.') ? n : `bert.${n}`).replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'),
    extra: {
      'cls.seq_relationship.weight': { dtype: 'F32', shape: [2, 8], data: new Float32Array(16) },
      'cls.seq_relationship.bias': { dtype: 'F32', shape: [2], data: new Float32Array(2) },
      'cls.predictions.decoder.weight': { dtype: 'F32', shape: [18, 8], data: new Float32Array(144).fill(0.5) },
      'bert.embeddings.position_ids': { dtype: 'I64', shape: [1, 16], data: Array.from({ length: 16 }, (_, i) => i) },
    },
  });
  const got = await loadWeights(dir, c);
  assert.equal(got.hasMlmHead, true);
  for (const [name, t] of w) assert.deepEqual(got.weights.get(name)!.data, t.data, name);
  assert.equal(got.weights.get('cls.predictions.decoder.weight')!.data[0], 0.5);
  assert.equal(got.weights.has('cls.seq_relationship.weight'), false);
});

test('sharded and BF16 safetensors load', async () => {
  const c = tinyConfig();
  const dir = tempDir();
  const w = writeTinyCheckpoint(dir, { noWeights: true });
  const names = [...w.keys()];
  const half = Math.ceil(names.length / 2);
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => (weightMap[n] = i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors'));
  // shard 1 as F32; shard 2 as BF16 (top 16 bits of each float32, written by hand: the writer has no BF16)
  const shard1: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  names.slice(0, half).forEach((n) => (shard1[n] = { dtype: 'F32', shape: w.get(n)!.shape, data: w.get(n)!.data }));
  writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), Buffer.concat(encodeSafetensors(shard1)));
  const header: Record<string, unknown> = {};
  const bodies: Buffer[] = [];
  let off = 0;
  for (const n of names.slice(half)) {
    const t = w.get(n)!;
    const u32 = new Uint32Array(Float32Array.from(t.data).buffer);
    const b = Buffer.alloc(t.data.length * 2);
    u32.forEach((v, i) => b.writeUInt16LE(v >>> 16, i * 2));
    header[n] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + b.length] };
    off += b.length;
    bodies.push(b);
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), Buffer.concat([len, json, ...bodies]));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const got = await loadWeights(dir, c);
  assert.equal(got.files.length, 2);
  // Bit-exact: F32 tensors as written; a BF16 value is the float32 whose top 16 bits were stored.
  names.forEach((n, k) => {
    const a = Float32Array.from(w.get(n)!.data);
    const bits = new Uint32Array(a.buffer);
    if (k >= half) bits.forEach((v, i) => (bits[i] = v & 0xffff0000));
    assert.deepEqual(new Uint32Array(Float32Array.from(got.weights.get(n)!.data).buffer), bits, n);
  });
  const d2 = tempDir();
  mkdirSync(d2, { recursive: true });
  copyFileSync(join(dir, 'config.json'), join(d2, 'config.json'));
  copyFileSync(join(dir, 'model-00001-of-00002.safetensors'), join(d2, 'model-00001-of-00002.safetensors'));
  copyFileSync(join(dir, 'model.safetensors.index.json'), join(d2, 'model.safetensors.index.json'));
  await assert.rejects(loadWeights(d2, readConfigFile(join(d2, 'config.json'))), isInputError(/model-00002-of-00002\.safetensors.*missing/s));
});

test('the legacy (pre-1.6) torch.save format is read too: chained pickles, then raw storages', async () => {
  const dir = tempDir();
  const count = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return b;
  };
  const state = statePickle([
    { name: 'bert.embeddings.LayerNorm.gamma', key: '140001', numel: 3, size: [3], stride: [1] },
    { name: 'w', key: '140002', numel: 4, size: [2, 2], stride: [2, 1] },
  ], true);
  const sysInfo = Buffer.concat([P.proto(), P.emptyDict(), P.mark(), P.str('protocol_version'), P.int(1001), P.str('little_endian'), Buffer.from([0x88]), P.setitems(), P.stop()]);
  const keys = Buffer.concat([P.proto(), P.mark(), P.str('140001'), P.str('140002'), Buffer.from('l'), P.stop()]);
  const file = join(dir, 'pytorch_model.bin');
  writeFileSync(file, Buffer.concat([
    legacyMagicPickle(),
    Buffer.concat([P.proto(), P.int(1001), P.stop()]),
    sysInfo,
    state,
    keys,
    count(3), f32Bytes([1, 2, 3]),
    count(4), f32Bytes([4, 5, 6, 7]),
  ]));
  const t = await readPytorchBin(file);
  assert.deepEqual([...t.get('bert.embeddings.LayerNorm.gamma')!.data], [1, 2, 3]);
  assert.deepEqual([...t.get('w')!.data], [4, 5, 6, 7]);
  writeFileSync(file, Buffer.from('definitely not a checkpoint'));
  await assert.rejects(readPytorchBin(file), isInputError(/not a PyTorch checkpoint/));
});
