import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModelDir } from '../src/model/load.js';
import { createEngine } from '../src/model/engine.js';
import { readSafetensors } from '../src/model/safetensors.js';
import { extractWithReport } from '../src/extract/pipeline.js';
import { ownerWindows, planWindows } from '../src/extract/windows.js';
import type { Corpus } from '../src/corpus/types.js';
import { fixturesDir, tempDir } from './helpers.js';

/**
 * The pipeline with the real pieces (tokenizer, weights, engine) on the tiny-bert fixture:
 * the stored word vectors and word attention must equal the fixture's reference outputs
 * (an independent float64 BertModel) pooled by hand, to the fixtures' 1e-4.
 */
test('tiny-bert through the real engine: stored word vectors and attention equal the pooled reference', async () => {
  process.env.BERT_PROBE_CACHE ??= join(tempDir(), 'cache');
  const model = await loadModelDir(join(fixturesDir, 'tiny-bert'));
  const ref = readSafetensors(join(fixturesDir, 'tiny-bert-reference.safetensors'));
  const texts = JSON.parse(ref.metadata.sentences!) as string[];
  const refTokens = JSON.parse(ref.metadata.tokens!) as string[][];
  const tok = model.tokenizer as typeof model.tokenizer & { splitWords(t: string): string[] };
  const corpus: Corpus = {
    id: 'tiny-reference', format: 'text', sha256: 'x', files: [], skipped: {}, warnings: [],
    sentences: texts.map((t, i) => ({ id: `r${i}`, source: { file: 'reference', line: i + 1 }, words: tok.splitWords(t) })),
  };
  const engine = await createEngine(model, { engine: 'auto' });
  try {
    const { store, report } = await extractWithReport({ model, engine, corpus, request: { layers: [0, 1, 2, 3], attentionLayers: [1, 3] }, batchSize: 4, shardSize: 4, storeDir: join(tempDir(), 's') });
    assert.equal(report.windowed, 0);
    const T = ref.tensors.get('input_ids')!.shape[1]!;
    const H = 32, A = 4;
    for (const l of [0, 1, 2, 3]) {
      const hs = ref.tensors.get(`hidden_states.${l}`)!.data;
      const { vectors, sentenceOffsets } = await store.readLayer(l);
      corpus.sentences.forEach((s, i) => {
        const enc = model.tokenizer.encodeWords(s.words);
        assert.deepEqual(enc.tokens, refTokens[i], 'same pieces as the reference');
        enc.wordSpans.forEach(([a, b], w) => {
          for (let h = 0; h < H; h++) {
            let m = 0;
            for (let p = a; p < b; p++) m += hs[(i * T + p) * H + h]!;
            m /= b - a;
            const got = vectors[(sentenceOffsets[i]! + w) * H + h]!;
            if (Math.abs(got - m) > 1e-4) assert.fail(`layer ${l} sentence ${i} word ${w} dim ${h}: ${got} vs ${m}`);
          }
        });
      });
    }
    // attention of sentence 2 (electro ##dy ##nami ##cs is one word of 4 pieces), layer 3
    const i = 2;
    const enc = model.tokenizer.encodeWords(corpus.sentences[i]!.words);
    const P = enc.ids.length;
    const groups = [[0, 1], ...enc.wordSpans, [P - 1, P]] as [number, number][];
    const att = ref.tensors.get('attentions.2')!.data;
    const got = await store.readAttention(3, i);
    const G = groups.length;
    assert.deepEqual(got.shape, [A, G, G]);
    for (let h = 0; h < A; h++) for (let gi = 0; gi < G; gi++) for (let gj = 0; gj < G; gj++) {
      let s = 0;
      for (let r = groups[gi]![0]; r < groups[gi]![1]; r++) for (let c = groups[gj]![0]; c < groups[gj]![1]; c++) s += att[((i * A + h) * T + r) * T + c]!;
      s /= groups[gi]![1] - groups[gi]![0];
      assert.ok(Math.abs(got.data[(h * G + gi) * G + gj]! - s) < 1e-4, `head ${h} ${gi}→${gj}`);
    }
  } finally {
    await engine.dispose();
  }
});

test('tiny-bert: a sentence longer than its 64 positions is stitched from windows; each word equals a run on its own window', async () => {
  process.env.BERT_PROBE_CACHE ??= join(tempDir(), 'cache');
  const model = await loadModelDir(join(fixturesDir, 'tiny-bert'));
  const engine = await createEngine(model, { engine: 'auto' });
  try {
    // 90 one-piece words > 62 pieces per window: windows [0,62) and [28,90) (stride 31, last aligned to the end)
    const words = Array.from({ length: 90 }, (_, k) => ['the', 'cat', 'sat', 'on', 'mat', 'and', 'slept', 'here'][k % 8]!);
    const w = planWindows(90, 62);
    assert.deepEqual(w, [{ start: 0, end: 62 }, { start: 28, end: 90 }]);
    const sent = (id: string, ws: string[]) => ({ id, source: { file: 'x', line: 1 }, words: ws });
    const corpus: Corpus = {
      id: 'long', format: 'text', sha256: 'y', files: [], skipped: {}, warnings: [],
      sentences: [sent('long', words), sent('w0', words.slice(0, 62)), sent('w1', words.slice(28, 90))],
    };
    assert.ok(corpus.sentences[0]!.words.every((x) => model.tokenizer.encodeWords([x]).ids.length === 3), 'one piece per word');
    const { store, report } = await extractWithReport({ model, engine, corpus, request: { layers: [0, 3], attentionLayers: [2] }, storeDir: join(tempDir(), 's') });
    assert.equal(report.windowed, 1);
    assert.equal(report.attentionSkipped, 1);
    assert.equal(store.hasAttention(0), false);
    assert.equal(store.hasAttention(1), true);
    await assert.rejects(store.readAttention(2, 0), /longer than the model's 64 positions/);
    const owner = ownerWindows(90, w);
    assert.equal(owner[44], 0);
    assert.equal(owner[45], 1);
    for (const l of [0, 3]) {
      const { vectors, sentenceOffsets } = await store.readLayer(l);
      for (let k = 0; k < 90; k++) {
        const o = owner[k]!;
        const ref = sentenceOffsets[1 + o]! + (k - w[o]!.start);
        for (let h = 0; h < 32; h++) {
          const a = vectors[k * 32 + h]!, b = vectors[ref * 32 + h]!;
          if (Math.abs(a - b) > 1e-5) assert.fail(`layer ${l} word ${k} (window ${o}) dim ${h}: ${a} vs ${b}`);
        }
      }
    }
  } finally {
    await engine.dispose();
  }
});
