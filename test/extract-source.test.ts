import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { extractActivations } from '../src/extract/pipeline.js';
import { MissingActivation, openStore } from '../src/extract/store.js';
import { mergeRequests } from '../src/extract/request.js';
import { FakeEngine, fakeCorpus, fakeHidden, fakeModel, FakeTokenizer } from './extract-fakes.js';
import { tempDir } from './helpers.js';

/** Rows of the whole-split read for these sentences, in this order: what positional reads must return. */
function rowsOf(all: Float32Array, offsets: Int32Array, sentences: number[], H: number): Float32Array {
  const parts = sentences.map((s) => all.subarray(offsets[s]! * H, offsets[s + 1]! * H));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('readWords: any subset, any order, across shards and --shard parts, equals the rows of the whole split', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(37);
  const H = model.config.hiddenSize;
  for (const dtype of ['float32', 'float16'] as const) {
    const whole = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [0, 2], attentionLayers: [] }, dtype, shardSize: 5, storeDir: join(tempDir(), 'w') });
    const dirs = [];
    for (let k = 1; k <= 3; k++) {
      const dir = join(tempDir(), `p${k}`);
      await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [0, 2], attentionLayers: [] }, dtype, shardSize: 4, storeDir: dir, shard: { index: k, count: 3 } });
      dirs.push(dir);
    }
    const parts = openStore(dirs);
    for (const layer of [0, 2]) {
      const { vectors, sentenceOffsets } = await whole.readLayer(layer);
      for (const batch of [[0], [36, 0, 5, 4, 3], [12, 13, 14, 15, 16, 17], [20, 20, 1], []]) {
        const want = rowsOf(vectors, sentenceOffsets, batch, H);
        assert.deepEqual(await whole.readWords(layer, batch), want, `${dtype} layer ${layer} [${batch}]`);
        assert.deepEqual(await parts.readWords(layer, batch), want, `${dtype} parts layer ${layer} [${batch}]`);
      }
    }
    await assert.rejects(whole.readWords(1, [0]), MissingActivation);
    await assert.rejects(whole.readWords(0, [37]), RangeError);
    assert.equal(whole.hasPieces, false);
    await assert.rejects(whole.readPieces(0, [0]), MissingActivation);
  }
});

test('neighbouring sentences of one shard are one positional read; reads never exceed the batch', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(40);
  const store = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [1], attentionLayers: [] }, shardSize: 10, storeDir: join(tempDir(), 's') });
  const H = model.config.hiddenSize;
  await store.readWords(1, [10, 11, 12, 13]);
  assert.equal(store.stats.reads, 1);
  const words = [10, 11, 12, 13].reduce((a, s) => a + store.wordCounts[s]!, 0);
  assert.equal(store.stats.bytesRead, words * H * 4);
  await store.readWords(1, [9, 10, 3]); // 9 | 10 cross a shard; 3 is elsewhere
  assert.equal(store.stats.reads, 4);
  assert.ok(store.stats.largestRead <= words * H * 4);
});

test('piece level: every piece incl. [CLS]/[SEP] with word spans; word reads pool the pieces like a word-level store', async () => {
  const model = fakeModel();
  // sentence 3 is longer than the 64 positions: hidden states from windows
  const long = Array.from({ length: 40 }, (_, i) => (i % 2 ? 'extraordinarily' : 'unbelievable'));
  const corpus = fakeCorpus(12, [long, ['a']]);
  const H = model.config.hiddenSize;
  const pieces = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [1, 3], attentionLayers: [], level: 'piece' }, shardSize: 5, storeDir: join(tempDir(), 'pc') });
  const words = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [1, 3], attentionLayers: [] }, shardSize: 5, storeDir: join(tempDir(), 'wd') });
  assert.equal(pieces.hasPieces, true);
  assert.deepEqual(pieces.pieceLayers, [1, 3]);
  assert.deepEqual(pieces.wordLayers, []);
  assert.deepEqual(pieces.layers, [1, 3]);
  const tok = new FakeTokenizer();
  const batch = [7, 0, 13, 1, 2, 11];
  for (const layer of [1, 3]) {
    const got = await pieces.readPieces(layer, batch);
    let at = 0;
    for (let i = 0; i < batch.length; i++) {
      const enc = tok.encodeWords(corpus.sentences[batch[i]!]!.words);
      assert.equal(got.pieceCounts[i], enc.ids.length);
      assert.deepEqual(got.wordSpans[i], enc.wordSpans);
      for (let p = 0; p < enc.ids.length; p++) {
        for (let h = 0; h < H; h++) assert.equal(got.vectors[(at + p) * H + h], fakeHidden(enc.ids[p]!, p, layer, h), `sentence ${batch[i]} piece ${p}`);
      }
      at += enc.ids.length;
    }
    assert.equal(got.vectors.length, at * H);
    const all = [...Array(corpus.sentences.length).keys()];
    assert.deepEqual(await pieces.readWords(layer, all), await words.readWords(layer, all), `pooled on read, layer ${layer}`);
  }
});

test('mergeRequests: the union of layers and attention, piece level if any asks for it', () => {
  assert.deepEqual(mergeRequests({ layers: [4, 0], attentionLayers: [] }, { layers: [0, 12], attentionLayers: [3], level: 'piece' }, { layers: [], attentionLayers: [1, 3], rawAttention: true }), {
    layers: [0, 4, 12], attentionLayers: [1, 3], level: 'piece', rawAttention: true, mlmHead: undefined, headMask: undefined,
  });
  assert.equal(mergeRequests({ layers: [1], attentionLayers: [] }).level, 'word');
});
