import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { extractActivations } from '../src/extract/pipeline.js';
import { openActivations } from '../src/extract/sources/open.js';
import { structuralProbesAlignment, wordpiece } from '../src/extract/sources/align-hdf5.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { packagedBertVocab, tokenizerFromVocab } from '../src/model/tokenizer.js';
import type { Corpus } from '../src/corpus/types.js';
import { InputError } from '../src/util/errors.js';
import type { ActivationSource } from '../src/extract/request.js';
import { FakeEngine, fakeCorpus, fakeModel } from './extract-fakes.js';
import { tempDir } from './helpers.js';

/** A planted value for (sentence, token, layer, dim): any misplaced row shows. */
const plant = (s: number, t: number, l: number, d: number): number => Math.fround(s + 0.01 * t + 0.001 * l + 0.0001 * d);

function corpusOf(sentences: string[][], id = 'planted'): Corpus {
  return { id, format: 'test', sha256: id, files: [], skipped: {}, warnings: [], sentences: sentences.map((words, i) => ({ id: `p${i}`, source: { file: 'planted.conllu', line: 1 + i * 10 }, words })) };
}

/** readWords into a buffer from `alloc` (a pooled one, larger than needed): the same values, in that buffer. */
async function assertReadsInto(src: ActivationSource, layer: number, sentences: number[]): Promise<void> {
  const fresh = await src.readWords(layer, sentences);
  const buffer = new Float32Array(fresh.length + 64).fill(NaN).buffer;
  const asked: number[] = [];
  const got = await src.readWords(layer, sentences, (bytes) => (asked.push(bytes), buffer));
  assert.deepEqual(asked, [fresh.length * 4]);
  assert.ok(got.buffer === buffer && got.byteOffset === 0 && got.length === fresh.length, 'a view from the start of the buffer given');
  assert.deepEqual(got, fresh);
}

const WORDS = [['the', 'cat', 'sat'], ['u.s.', 'unaffable', 'dogs', 'ran', '.'], ['a'], ['running', 'fast', 'today', 'and', 'yesterday', 'too']];

test('our store through --activations: counts checked against the corpus (exit 2), reads as extracted', async () => {
  const model = fakeModel();
  const corpus = fakeCorpus(9);
  const dir = join(tempDir(), 's');
  const made = await extractActivations({ model, engine: new FakeEngine(model.config), corpus, request: { layers: [0, 3], attentionLayers: [2] }, shardSize: 4, storeDir: dir });
  const src = await openActivations(dir, corpus);
  assert.deepEqual(src.layers, [0, 3]);
  assert.deepEqual(await src.readWords(3, [8, 2]), await made.readWords(3, [8, 2]));
  assert.deepEqual(await src.readAttention(2, 4), await made.readAttention(2, 4));
  await assert.rejects(openActivations(dir, fakeCorpus(8)), (e: unknown) => e instanceof InputError && /holds 9 sentences; the corpus fake-corpus has 8/.test(e.message));
  const limited = await openActivations(dir, fakeCorpus(8), { allowLonger: true }); // --limit 8
  assert.deepEqual(await limited.readWords(0, [7]), await made.readWords(0, [7]));
  await assertReadsInto(made, 3, [8, 2, 3]);
  await assertReadsInto(limited, 0, [7, 1]);
  const changed = fakeCorpus(9);
  changed.sentences[5]!.words.push('extra');
  await assert.rejects(openActivations(dir, changed), (e: unknown) => e instanceof InputError && /sentence 5 \(s5, fake:6\) has \d+ words in the corpus but \d+ in the activation store/.test(e.message));
  await assert.rejects(openActivations(join(dir, 'nope'), corpus), (e: unknown) => e instanceof InputError && e.exitCode === 2);
  writeFileSync(join(dir, 'notes.txt'), 'hello');
  await assert.rejects(openActivations(join(dir, 'notes.txt'), corpus), /not an activation store or an HDF5 file/);
});

/** A store as docs/store-format.md tells a user to write one: minimal index.json + one safetensors file per layer and shard. */
function writeMinimalStore(dir: string, corpus: Corpus, layers: number[], hidden: number, shardSize: number, shapeOf?: (rows: number) => number[]): void {
  const wordCounts = corpus.sentences.map((s) => s.words.length);
  for (const l of layers) {
    mkdirSync(join(dir, `layer.${l}`), { recursive: true });
    for (let k = 0; k * shardSize < wordCounts.length; k++) {
      const rows: number[] = [];
      for (let s = k * shardSize; s < Math.min(wordCounts.length, (k + 1) * shardSize); s++) {
        for (let w = 0; w < wordCounts[s]!; w++) for (let d = 0; d < hidden; d++) rows.push(plant(s, w, l, d));
      }
      const n = rows.length / hidden;
      writeSafetensors(join(dir, `layer.${l}`, `shard-${String(k).padStart(5, '0')}.safetensors`), { vectors: { dtype: 'F32', shape: shapeOf ? shapeOf(n) : [n, hidden], data: Float32Array.from(rows) } });
    }
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ format: 'bert-probe-activations', version: 1, hiddenSize: hidden, layers, wordCounts, shardSize, model: 'my-lstm' }));
}

test('a store written by hand in the documented minimal format is read by position; bad shapes fail on open (exit 2)', async () => {
  const corpus = corpusOf(WORDS);
  const dir = join(tempDir(), 'ext');
  writeMinimalStore(dir, corpus, [0, 1], 6, 3);
  const src = await openActivations(dir, corpus);
  assert.equal(src.description.model && (src.description.model as { id: string }).id, 'my-lstm');
  const got = await src.readWords(1, [3, 0]);
  const want: number[] = [];
  for (const s of [3, 0]) for (let w = 0; w < WORDS[s]!.length; w++) for (let d = 0; d < 6; d++) want.push(plant(s, w, 1, d));
  assert.deepEqual([...got], want);
  const bad = join(tempDir(), 'bad');
  writeMinimalStore(bad, corpus, [0], 6, 3, (n) => [n * 2, 3]);
  await assert.rejects(openActivations(bad, corpus), (e: unknown) => e instanceof InputError && /vectors/.test(e.message) && /layer\.0/.test(e.message));
  writeFileSync(join(bad, 'index.json'), JSON.stringify({ format: 'bert-probe-activations', version: 1, hiddenSize: 6, layers: [0], wordCounts: 'many', shardSize: 3 }));
  await assert.rejects(openActivations(bad, corpus), /bad 'wordCounts'/);
});

async function writeHdf5(path: string, rows: (s: number) => { tokens: number; layers: number; dim: number }, n: number, dtype = '<f'): Promise<void> {
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const f = new h5.File(path, 'w');
  for (let s = 0; s < n; s++) {
    const { tokens, layers, dim } = rows(s);
    const data = new Float32Array(layers * tokens * dim);
    for (let l = 0; l < layers; l++) for (let t = 0; t < tokens; t++) for (let d = 0; d < dim; d++) data[(l * tokens + t) * dim + d] = plant(s, t, l, d);
    f.create_dataset({ name: String(s), data: dtype === '<d' ? Float64Array.from(data) : data, shape: [layers, tokens, dim], dtype });
  }
  f.create_dataset({ name: 'sentence_to_index', data: '{}' });
  f.close();
}

test('structural-probes hdf5 at word level (their ELMo files): rows by word, counts and shapes checked', async () => {
  const corpus = corpusOf(WORDS);
  for (const dtype of ['<f', '<d']) {
    const path = join(tempDir(), 'elmo.hdf5');
    await writeHdf5(path, (s) => ({ tokens: WORDS[s]!.length, layers: 3, dim: 4 }), WORDS.length, dtype);
    const src = await openActivations(path, corpus);
    assert.deepEqual(src.layers, [0, 1, 2]);
    assert.equal(src.hasPieces, false);
    assert.equal(src.hiddenSize, 4);
    const got = await src.readWords(2, [1, 3]);
    const want: number[] = [];
    for (const s of [1, 3]) for (let w = 0; w < WORDS[s]!.length; w++) for (let d = 0; d < 4; d++) want.push(plant(s, w, 2, d));
    assert.deepEqual([...got], want, dtype);
    assert.equal(src.hasAttention(0), false);
    await src.close();
    const shifted = await openActivations(path, corpus, { firstLayer: 1 });
    assert.deepEqual(shifted.layers, [1, 2, 3]);
    assert.deepEqual(await shifted.readWords(3, [1, 3]), got);
    await shifted.close();
  }
  const short = join(tempDir(), 'short.hdf5');
  await writeHdf5(short, (s) => ({ tokens: WORDS[s]!.length, layers: 3, dim: 4 }), 3);
  await assert.rejects(openActivations(short, corpus), (e: unknown) => e instanceof InputError && /holds 3 sentences; the corpus planted has 4/.test(e.message));
  const prefix = await openActivations(short, corpusOf(WORDS.slice(0, 2)), { allowLonger: true });
  assert.equal(prefix.numSentences, 2);
  await prefix.close();
  const wrongDim = join(tempDir(), 'dim.hdf5');
  await writeHdf5(wrongDim, (s) => ({ tokens: WORDS[s]!.length, layers: 3, dim: s === 2 ? 5 : 4 }), 4);
  await assert.rejects(openActivations(wrongDim, corpus), /dataset '2' has the wrong shape/);
});

test("structural-probes' alignment: WordPiece only (punctuation stays inside its word), ## continuation", () => {
  // BERT's WordpieceTokenizer docstring example: "unaffable" → un ##aff ##able.
  const vocab = new Set(['[CLS]', '[SEP]', '[UNK]', 'un', '##aff', '##able', 'u', '##.', '##s', 'the']);
  assert.deepEqual(wordpiece('[CLS] the unaffable u.s. xyz [SEP]', (p) => vocab.has(p)), ['[CLS]', 'the', 'un', '##aff', '##able', 'u', '##.', '##s', '##.', '[UNK]', '[SEP]']);
  const tok = { tokenToId: (p: string) => (vocab.has(p) ? 1 : undefined) };
  assert.deepEqual(structuralProbesAlignment(['the', 'unaffable', 'u.s.', 'xyz'], tok), { pieces: 11, spans: [[1, 2], [2, 5], [5, 9], [9, 10]] });
  assert.deepEqual(wordpiece('x'.repeat(101), () => true), ['[UNK]']);
});

test('structural-probes hdf5 at word-piece level (convert_raw_to_bert.py): pieces averaged into words as BERTDataset', async () => {
  const corpus = corpusOf(WORDS);
  const tokenizer = tokenizerFromVocab(packagedBertVocab());
  const aligned = WORDS.map((w) => structuralProbesAlignment(w, tokenizer));
  assert.ok(aligned.some((a, s) => a.pieces > WORDS[s]!.length + 2), 'some word has several pieces');
  const path = join(tempDir(), 'bert.hdf5');
  await writeHdf5(path, (s) => ({ tokens: aligned[s]!.pieces, layers: 2, dim: 3 }), WORDS.length);
  await assert.rejects(openActivations(path, corpus), /pieces need a tokenizer/);
  const src = await openActivations(path, corpus, { tokenizer, firstLayer: 1 });
  assert.equal(src.hasPieces, true);
  assert.deepEqual(src.layers, [1, 2]);
  const batch = [1, 0, 3];
  const words = await src.readWords(2, batch);
  const pieces = await src.readPieces(2, batch);
  let wAt = 0;
  let pAt = 0;
  for (const [i, s] of batch.entries()) {
    assert.equal(pieces.pieceCounts[i], aligned[s]!.pieces);
    assert.deepEqual(pieces.wordSpans[i], aligned[s]!.spans);
    for (let t = 0; t < aligned[s]!.pieces; t++) for (let d = 0; d < 3; d++) assert.equal(pieces.vectors[(pAt + t) * 3 + d], plant(s, t, 1, d));
    for (const [a, b] of aligned[s]!.spans) {
      for (let d = 0; d < 3; d++) {
        let sum = 0;
        for (let t = a; t < b; t++) sum += plant(s, t, 1, d);
        assert.ok(Math.abs(words[wAt * 3 + d]! - sum / (b - a)) < 1e-6, `sentence ${s} word ${wAt}`);
      }
      wAt++;
    }
    pAt += aligned[s]!.pieces;
  }
  await src.close();
  const off = join(tempDir(), 'off.hdf5');
  await writeHdf5(off, (s) => ({ tokens: aligned[s]!.pieces + (s === 3 ? 1 : 0), layers: 2, dim: 3 }), WORDS.length);
  await assert.rejects(openActivations(off, corpus, { tokenizer }), (e: unknown) => e instanceof InputError && /dataset '3' has \d+ tokens; sentence 3 \(p3, planted.conllu:31\)/.test(e.message));
});

test('docs/store-format.md: its Python example writes a store that openActivations reads', async (t) => {
  const probe = spawnSync('python3', ['-c', 'import safetensors, numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    t.skip(`python3 with safetensors and numpy is not installed here (${(probe.stderr || 'no python3').trim().split('\n').pop()}); pip install safetensors numpy`);
    return;
  }
  const { readFileSync } = await import('node:fs');
  const doc = readFileSync(new URL('../../docs/store-format.md', import.meta.url), 'utf8');
  const code = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(code, 'docs/store-format.md has a ```python block');
  const dir = join(tempDir(), 'py');
  const call = `write_store(${JSON.stringify(dir)}, {l: [np.array([[s + 0.01 * w + 0.001 * l + 0.0001 * d for d in range(4)] for w in range(n)]) for s, n in enumerate([3, 5, 1, 6])] for l in (0, 1)}, shard_size=2)`;
  const run = spawnSync('python3', ['-c', `${code}\n${call}`], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const src = await openActivations(dir, corpusOf(WORDS));
  const got = await src.readWords(1, [3, 1]);
  const want: number[] = [];
  for (const s of [3, 1]) for (let w = 0; w < WORDS[s]!.length; w++) for (let d = 0; d < 4; d++) want.push(plant(s, w, 1, d));
  assert.deepEqual([...got].map((x) => x.toFixed(5)), want.map((x) => x.toFixed(5)));
});

test('a real model end to end: pieces extracted by us, written as a convert_raw_to_bert.py-style hdf5, read back as our word vectors', async () => {
  const { loadModelDir } = await import('../src/model/load.js');
  const { createEngine } = await import('../src/model/engine.js');
  const { loadCorpus } = await import('../src/corpus/load.js');
  const { fixturesDir, repoRoot } = await import('./helpers.js');
  const model = await loadModelDir(join(fixturesDir, 'tiny-bert'));
  const corpus = await loadCorpus(join(repoRoot, 'test', 'fixtures', 'extract', 'sample.conllu'), { offline: true });
  const engine = await createEngine(model, { engine: 'onnx' });
  const L = model.config.numHiddenLayers;
  const layers = [...Array(L).keys()].map((i) => i + 1);
  let pieces, words;
  try {
    pieces = await extractActivations({ model, engine, corpus, request: { layers, attentionLayers: [], level: 'piece' }, storeDir: join(tempDir(), 'p') });
    words = await extractActivations({ model, engine, corpus, request: { layers, attentionLayers: [] }, storeDir: join(tempDir(), 'w') });
  } finally {
    await engine.dispose();
  }
  // Their layout: one dataset per sentence, [layers 1..L, pieces incl. [CLS]/[SEP], hidden] (no embeddings row).
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const path = join(tempDir(), 'bert.hdf5');
  const f = new h5.File(path, 'w');
  const H = model.config.hiddenSize;
  for (let s = 0; s < corpus.sentences.length; s++) {
    const P = pieces.pieceCounts[s]!;
    const data = new Float32Array(L * P * H);
    for (const l of layers) data.set((await pieces.readPieces(l, [s])).vectors, (l - 1) * P * H);
    f.create_dataset({ name: String(s), data, shape: [L, P, H], dtype: '<f' });
  }
  f.close();
  const src = await openActivations(path, corpus, { tokenizer: model.tokenizer, alignment: 'tokenizer', firstLayer: 1 });
  assert.deepEqual(src.layers, layers);
  const all = [...Array(corpus.sentences.length).keys()].reverse();
  for (const l of layers) {
    const a = await src.readWords(l, all);
    const b = await words.readWords(l, all);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-5, `layer ${l} value ${i}: ${a[i]} vs ${b[i]}`);
    await assertReadsInto(src, l, all);
  }
  await src.close();
});
