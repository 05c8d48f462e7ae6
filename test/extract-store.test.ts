import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { extractActivations, extractWithReport, storeIdentity } from '../src/extract/pipeline.js';
import { defaultStoreDir, openStore } from '../src/extract/store.js';
import { planWindows, ownerWindows } from '../src/extract/windows.js';
import { InputError } from '../src/util/errors.js';
import type { Corpus } from '../src/corpus/types.js';
import type { LoadedModel } from '../src/model/types.js';
import { FakeEngine, fakeAttentionRow, fakeCorpus, fakeHidden, fakeModel, FakeTokenizer } from './extract-fakes.js';
import { nearestHalf } from './float16-reference.js';
import { hasNumpy, skipUnless, tempDir } from './helpers.js';

const LONG = Array.from({ length: 40 }, (_, i) => (i % 2 ? 'extraordinarily' : 'unbelievable')); // 5 pieces each: 200 pieces > 64 positions

/** Expected word vectors computed straight from the fake engine's formula (independent of the pipeline). */
function expected(model: LoadedModel, corpus: Corpus, layer: number, pooling: 'mean' | 'first' | 'last' = 'mean'): number[][] {
  const H = model.config.hiddenSize, M = model.config.maxPositionEmbeddings;
  const out: number[][] = [];
  for (const s of corpus.sentences) {
    const enc = new FakeTokenizer().encodeWords(s.words);
    const P = enc.ids.length;
    // position each piece had in the sequence the engine saw
    const pos = enc.ids.map((_, i) => i);
    if (P > M) {
      const w = planWindows(P - 2, M - 2);
      const owner = ownerWindows(P - 2, w);
      for (let i = 0; i < P - 2; i++) pos[i + 1] = i - w[owner[i]!]!.start + 1;
    }
    for (const [a, b] of enc.wordSpans) {
      const pieces = pooling === 'mean' ? [...Array(b - a).keys()].map((k) => a + k) : [pooling === 'first' ? a : b - 1];
      const v: number[] = [];
      for (let h = 0; h < H; h++) v.push(pieces.reduce((acc, p) => acc + fakeHidden(enc.ids[p]!, pos[p]!, layer, h), 0) / pieces.length);
      out.push(v);
    }
  }
  return out;
}

function assertClose(actual: Float32Array, exp: number[][], tol: number, what: string): void {
  const flat = exp.flat();
  assert.equal(actual.length, flat.length, `${what}: length`);
  for (let i = 0; i < flat.length; i++) if (Math.abs(actual[i]! - flat[i]!) > tol) assert.fail(`${what}: value ${i}: ${actual[i]} vs ${flat[i]}`);
}

test('extracts word-level hidden states in corpus order, equal to hand-computed values, for every pooling', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(23);
  for (const pooling of ['mean', 'first', 'last'] as const) {
    const engine = new FakeEngine(model.config);
    const store = await extractActivations({ model, engine, corpus, request: { layers: [0, 2], attentionLayers: [] }, pooling, batchSize: 4, shardSize: 5, storeDir: join(tempDir(), 'store') });
    assert.equal(store.numSentences, 23);
    assert.deepEqual(store.layers, [0, 2]);
    assert.deepEqual(store.wordCounts, corpus.sentences.map((s) => s.words.length));
    for (const l of [0, 2]) {
      const { vectors, sentenceOffsets } = await store.readLayer(l);
      assert.equal(sentenceOffsets[23], corpus.sentences.reduce((a, s) => a + s.words.length, 0));
      assertClose(vectors, expected(model, corpus, l, pooling), 1e-6, `${pooling} layer ${l}`);
    }
    await assert.rejects(store.readLayer(1), /no complete layer\.1/);
  }
});

test('batch size and bucketing do not change the stored values (byte-equal shards)', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(17);
  const dirs = [];
  for (const batchSize of [1, 7]) {
    const dir = join(tempDir(), 'store');
    await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [1], attentionLayers: [1] }, batchSize, shardSize: 6, storeDir: dir });
    dirs.push(dir);
  }
  for (const sub of ['layer.1', 'attn.1']) {
    const files = readdirSync(join(dirs[0]!, sub)).sort();
    assert.equal(files.length, 3);
    for (const f of files) assert.ok(readFileSync(join(dirs[0]!, sub, f)).equals(readFileSync(join(dirs[1]!, sub, f))), `${sub}/${f}`);
  }
});

test('word-level attention from the store matches a direct Clark et al. conversion of the engine rows', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(0, [['extraordinarily', 'x', 'cat'], ['a']]);
  const store = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [], attentionLayers: [2, 3] }, storeDir: join(tempDir(), 's') });
  const enc = new FakeTokenizer().encodeWords(corpus.sentences[0]!.words);
  // pieces: [CLS] ext ##rao ##rdi ##nar ##ily x cat [SEP] → groups {0} {1..5} {6} {7} {8}
  const groups = [[0], [1, 2, 3, 4, 5], [6], [7], [8]];
  assert.equal(enc.ids.length, 9);
  const a = await store.readAttention(2, 0);
  assert.deepEqual(a.shape, [2, 5, 5]);
  for (let h = 0; h < 2; h++) for (let gi = 0; gi < 5; gi++) for (let gj = 0; gj < 5; gj++) {
    let s = 0;
    for (const r of groups[gi]!) {
      const row = fakeAttentionRow(2, h, r, 9);
      for (const c of groups[gj]!) s += row[c]!;
    }
    const want = s / groups[gi]!.length;
    assert.ok(Math.abs(a.data[(h * 5 + gi) * 5 + gj]! - want) < 1e-6, `h${h} ${gi}→${gj}`);
  }
  const b = await store.readAttention(3, 1);
  assert.deepEqual(b.shape, [2, 3, 3]);
});

test('a sentence longer than the model positions: stitched windows for hidden states, attention skipped and counted', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(3, [LONG]);
  const engine = new FakeEngine(model.config); // throws on any sequence longer than 64
  const { store, report } = await extractWithReport({ model, engine, corpus, request: { layers: [1, 3], attentionLayers: [1] }, batchSize: 2, storeDir: join(tempDir(), 's') });
  assert.equal(report.windowed, 1);
  assert.equal(report.attentionSkipped, 1);
  assert.deepEqual(store.windowedSentences, [3]);
  assert.equal(store.hasAttention(3), false);
  assert.equal(store.hasAttention(0), true);
  await assert.rejects(store.readAttention(1, 3), /longer than the model's 64 positions/);
  for (const l of [1, 3]) assertClose((await store.readLayer(l)).vectors, expected(model, corpus, l), 1e-6, `layer ${l}`);
  const index = JSON.parse(readFileSync(join(store.dirs[0]!, 'index.json'), 'utf8'));
  assert.deepEqual(index.windowed, [3]);
  assert.deepEqual(index.identity.window, { content: 62, stride: 31 });
});

test('float16 stores round-trip exactly: every value is the nearest float16 (ties to even) of the float32', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(9);
  const store = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [2], attentionLayers: [] }, dtype: 'float16', storeDir: join(tempDir(), 's') });
  const f32 = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [2], attentionLayers: [] }, storeDir: join(tempDir(), 's32') });
  const got = (await store.readLayer(2)).vectors;
  const want = (await f32.readLayer(2)).vectors;
  assertClose(want, expected(model, corpus, 2), 1e-6, 'f32');
  assert.equal(got.length, want.length);
  let inexact = 0;
  for (let i = 0; i < want.length; i++) {
    const h = nearestHalf(want[i]!);
    if (h !== want[i]) inexact++;
    if (!Object.is(got[i], h)) assert.fail(`value ${i}: stored ${got[i]}, nearest float16 of ${want[i]} is ${h}`);
  }
  assert.ok(inexact > want.length / 2, `the values really needed rounding (${inexact} of ${want.length})`);
  const shard = readFileSync(join(store.dirs[0]!, 'layer.2', 'shard-00000.safetensors'));
  assert.match(shard.subarray(8, 8 + Number(shard.readBigUInt64LE(0))).toString(), /"vectors":\{"dtype":"F16"/);
});

test('a second run reuses the store: no forward passes for stored layers, only new ones computed', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(12);
  const dir = join(tempDir(), 's');
  const e1 = new FakeEngine(model.config);
  await extractActivations({ model, engine: e1, corpus, request: { layers: [0, 1], attentionLayers: [] }, storeDir: dir, shardSize: 5 });
  assert.ok(e1.calls > 0);
  const again = await extractActivations({ model, engine: async () => assert.fail('a complete store must not start an engine'), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: dir, shardSize: 5 });
  assert.deepEqual(again.layers, [0, 1]);
  const e3 = new FakeEngine(model.config);
  let made = 0;
  const more = await extractActivations({ model, engine: async () => (made++, e3), corpus, request: { layers: [1, 3], attentionLayers: [] }, storeDir: dir, shardSize: 5 });
  assert.ok(e3.calls > 0);
  assert.equal(made, 1, 'engine made once, when the first missing shard needed it');
  assert.deepEqual(more.layers, [0, 1, 3]);
  assertClose((await more.readLayer(3)).vectors, expected(model, corpus, 3), 1e-6, 'added layer');
});

test('a store built for another model, corpus or pooling is refused (--out) and never shared (cache key)', async () => {
  const corpus = fakeCorpus(6);
  const a = fakeModel('model-a', 'a'.repeat(64));
  const b = fakeModel('model-a', 'b'.repeat(64)); // same name, other weights
  const dir = join(tempDir(), 's');
  await extractActivations({ model: a, engine: new FakeEngine(a.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: dir });
  await assert.rejects(
    extractActivations({ model: b, engine: new FakeEngine(b.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: dir }),
    (err: unknown) => err instanceof InputError && /another model/.test(err.message) && /--force/.test(err.message) && /index\.json/.test(err.message),
  );
  await assert.rejects(extractActivations({ model: a, engine: new FakeEngine(a.config), corpus: fakeCorpus(7), request: { layers: [1], attentionLayers: [] }, storeDir: dir }), /another corpus/);
  await assert.rejects(extractActivations({ model: a, engine: new FakeEngine(a.config), corpus, pooling: 'first', request: { layers: [1], attentionLayers: [] }, storeDir: dir }), /another pooling/);
  // --force replaces it
  const forced = await extractActivations({ model: b, engine: new FakeEngine(b.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: dir, force: true });
  assert.equal(forced.identity.model.weightsSha256, 'b'.repeat(64));
  // default folders differ
  const ida = storeIdentity({ model: a, corpus }), idb = storeIdentity({ model: b, corpus });
  assert.notEqual(defaultStoreDir(ida), defaultStoreDir(idb));
  assert.notEqual(defaultStoreDir(ida), defaultStoreDir({ ...ida, pooling: 'last' }));
  // a non-empty folder that is not a store is not written into
  const other = tempDir();
  writeFileSync(join(other, 'notes.txt'), 'mine');
  await assert.rejects(extractActivations({ model: a, engine: new FakeEngine(a.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: other }), /not empty/);
});

test('--shard K/N stores read as one with openStore; gaps and mixed models refused', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(11, [LONG]);
  const needs = { layers: [2], attentionLayers: [1] };
  const full = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: needs, storeDir: join(tempDir(), 'full'), shardSize: 3 });
  const parts: string[] = [];
  for (let k = 3; k >= 1; k--) {
    const dir = join(tempDir(), `part${k}`);
    const part = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: needs, storeDir: dir, shard: { index: k, count: 3 }, shardSize: 3 });
    assert.equal(part.numSentences, [4, 4, 4][k - 1]);
    parts.push(dir);
  }
  const combined = openStore(parts);
  assert.equal(combined.numSentences, 12);
  assert.deepEqual(combined.sentenceIds, full.sentenceIds);
  assert.deepEqual([...(await combined.readLayer(2)).vectors], [...(await full.readLayer(2)).vectors]);
  assert.deepEqual(combined.windowedSentences, [11]);
  for (const s of [0, 5, 10]) assert.deepEqual([...(await combined.readAttention(1, s)).data], [...(await full.readAttention(1, s)).data]);
  assert.throws(() => openStore([parts[0]!, parts[2]!]), /uncovered|cover/);
  assert.throws(() => openStore([parts[1]!]), /leaves sentences 0\.\.3 uncovered/);
  assert.throws(() => openStore([parts[2]!]), /cover 4 of the corpus's 12/);
  const otherModel = fakeModel('other', 'c'.repeat(64));
  const odir = join(tempDir(), 'o');
  await extractActivations({ model: otherModel, engine: new FakeEngine(otherModel.config), corpus, request: needs, storeDir: odir, shard: { index: 2, count: 3 }, shardSize: 3 });
  assert.throws(() => openStore([parts[2]!, odir, parts[0]!]), /disagree on model/);
  await assert.rejects(extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: needs, shard: { index: 4, count: 3 } }), InputError);
});

test('shards are plain safetensors: numpy reads them without our code', { skip: skipUnless('python3 with numpy', hasNumpy()) }, async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(5);
  const store = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: join(tempDir(), 's') });
  const py = `
import json, struct, sys, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8+n])
t = h['vectors']
s, e = t['data_offsets']
v = np.frombuffer(b[8+n+s:8+n+e], dtype='<f4').reshape(t['shape'])
print(json.dumps({'shape': list(v.shape), 'sum': float(v.astype(np.float64).sum()), 'meta': h['__metadata__']['model']}))`;
  const r = spawnSync('python3', ['-c', py, join(store.dirs[0]!, 'layer.1', 'shard-00000.safetensors')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  const { vectors } = await store.readLayer(1);
  assert.deepEqual(got.shape, [vectors.length / 8, 8]);
  assert.ok(Math.abs(got.sum - vectors.reduce((a, x) => a + x, 0)) < 1e-3);
  assert.equal(got.meta, 'fake-model');
});
