/**
 * Test-only planted attention (issue 11): random dependency trees, and piece-level attention in
 * which chosen heads put most of their weight on each word's gold head (dep->head) — everything
 * else is seeded noise. Word-level attention is Clark's conversion of the same maps.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Sentence } from '../src/corpus/types.js';
import { wordAttention } from '../src/extract/align.js';
import { INDEX_FILE, rawAttnName, shardFile, STORE_FORMAT, STORE_VERSION, writeAttentionShard, type StoreIndex } from '../src/extract/store.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { attnName } from '../src/util/names.js';
import { mulberry32 } from '../src/util/random.js';

export const PLANT_RELATIONS = ['nsubj', 'obj', 'det', 'amod', 'punct'];

/** Random trees over random words (2–9 letters, so the 3-letter fake tokenizer splits some). */
export function plantedSentences(count: number, seed: number, minWords = 4, maxWords = 12): Sentence[] {
  const rand = mulberry32(seed);
  const out: Sentence[] = [];
  for (let s = 0; s < count; s++) {
    const n = minWords + Math.floor(rand() * (maxWords - minWords + 1));
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const heads = new Array<number>(n).fill(0);
    for (let k = 1; k < n; k++) heads[order[k]!] = order[Math.floor(rand() * k)]! + 1;
    const words = Array.from({ length: n }, () => Array.from({ length: 2 + Math.floor(rand() * 8) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''));
    const deprels = heads.map((h) => (h === 0 ? 'root' : PLANT_RELATIONS[Math.floor(rand() * PLANT_RELATIONS.length)]!));
    out.push({ id: `planted-${s}`, source: { file: 'planted', line: s + 1 }, words, heads, deprels, xpos: words.map(() => 'NN'), upos: words.map(() => 'NOUN') });
  }
  return out;
}

/**
 * Piece-level attention [heads, P, P] of one layer: planted heads (0-based) give `weight` of
 * every piece row of word i to the first piece of its gold head (root words: to [SEP]); all
 * rows are normalised.
 */
export function plantedRawAttention(s: Sentence, spans: readonly [number, number][], P: number, heads: number, planted: readonly number[], rand: () => number, weight = 0.9): Float32Array {
  const out = new Float32Array(heads * P * P);
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < P; r++) {
      const row = out.subarray(h * P * P + r * P, h * P * P + (r + 1) * P);
      let sum = 0;
      for (let c = 0; c < P; c++) {
        row[c] = 0.05 + rand();
        sum += row[c]!;
      }
      const w = spans.findIndex(([a, b]) => r >= a && r < b);
      if (planted.includes(h) && w >= 0) {
        const target = s.heads![w]! === 0 ? P - 1 : spans[s.heads![w]! - 1]![0];
        for (let c = 0; c < P; c++) row[c] = (row[c]! / sum) * (1 - weight);
        row[target]! += weight;
      } else {
        for (let c = 0; c < P; c++) row[c] = row[c]! / sum;
      }
    }
  }
  return out;
}

export interface PlantedAttention {
  /** [sentence][layer index] piece-level [heads, P, P]. */
  raw: Float32Array[][];
  word: Float32Array[][];
  tokens: string[][];
}

/** Attention of every sentence and layer; `plant` maps a 1-based layer to its planted heads (0-based). */
export function plantedAttention(
  sentences: readonly Sentence[],
  tokenizer: { encodeWords(w: readonly string[]): { tokens: string[]; wordSpans: [number, number][] } },
  layers: number,
  heads: number,
  plant: Record<number, number[]>,
  seed: number,
): PlantedAttention {
  const rand = mulberry32(seed);
  const raw: Float32Array[][] = [];
  const word: Float32Array[][] = [];
  const tokens: string[][] = [];
  for (const s of sentences) {
    const enc = tokenizer.encodeWords(s.words);
    const P = enc.tokens.length;
    const r: Float32Array[] = [];
    const w: Float32Array[] = [];
    for (let l = 1; l <= layers; l++) {
      const a = plantedRawAttention(s, enc.wordSpans, P, heads, plant[l] ?? [], rand);
      r.push(a);
      w.push(wordAttention(a, heads, P, enc.wordSpans));
    }
    raw.push(r);
    word.push(w);
    tokens.push(enc.tokens);
  }
  return { raw, word, tokens };
}

/**
 * Write a bert-probe activation store (src/extract/store.ts layout) holding only attention:
 * `rawattn.N` (piece level) and/or `attn.N` (word level, Clark's mean conversion) for layers
 * 1..L, as `bert-probe extract --attention` would, from attention given per sentence and layer.
 * Sentences whose pieces exceed `maxPositions` are marked windowed (no attention), as extract does.
 */
export function writeAttentionStore(
  dir: string,
  corpus: { id: string; sha256: string; sentences: readonly Sentence[] },
  tokenizer: { encodeWords(w: readonly string[]): { tokens: string[]; wordSpans: [number, number][] }; fingerprint?: string },
  o: { layers: number; heads: number; hiddenSize: number; model: string; maxPositions: number; raw: boolean; word: boolean; shardSize?: number },
  attention: (sentence: number, layer: number, P: number, spans: [number, number][]) => Float32Array,
): void {
  const shardSize = o.shardSize ?? 64;
  const S = corpus.sentences.length;
  const encs = corpus.sentences.map((s) => tokenizer.encodeWords(s.words));
  const wordCounts = corpus.sentences.map((s) => s.words.length);
  const pieceCounts = encs.map((e) => e.tokens.length);
  const windowed = pieceCounts.flatMap((p, i) => (p > o.maxPositions ? [i] : []));
  const shards: StoreIndex['shards'] = [];
  const sentenceMap: [number, number][] = [];
  for (let first = 0, k = 0; first < S; first += shardSize, k++) {
    const n = Math.min(shardSize, S - first);
    let words = 0;
    for (let s = first; s < first + n; s++) {
      sentenceMap.push([k, words]);
      words += wordCounts[s]!;
    }
    shards.push({ file: shardFile(k), firstSentence: first, sentences: n, words });
  }
  const layers = Array.from({ length: o.layers }, (_, i) => i + 1);
  const now = new Date().toISOString();
  const index: StoreIndex = {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    identity: {
      model: { id: o.model, weightsSha256: '0'.repeat(64), randomInit: false },
      corpus: { id: corpus.id, sha256: corpus.sha256, sentences: S },
      tokenizer: tokenizer.fingerprint ?? 'test',
      pooling: 'mean',
      dtype: 'float32',
      precision: 'fp32',
      maxPositions: o.maxPositions,
      window: { content: o.maxPositions - 2, stride: Math.floor((o.maxPositions - 2) / 2) },
      shard: { index: 1, count: 1 },
    },
    hiddenSize: o.hiddenSize,
    numHeads: o.heads,
    numLayers: o.layers,
    layers: [],
    attentionLayers: o.word ? layers : [],
    rawAttentionLayers: o.raw ? layers : [],
    shardSize,
    firstSentence: 0,
    numSentences: S,
    sentenceIds: corpus.sentences.map((s) => s.id),
    wordCounts,
    pieceCounts,
    sentenceMap,
    shards,
    windowed,
    emptyWords: 0,
    createdAt: now,
    updatedAt: now,
  };
  mkdirSync(dir, { recursive: true });
  for (const l of layers) {
    shards.forEach((sh, k) => {
      const raw = new Map<number, { data: Float32Array; shape: number[] }>();
      const word = new Map<number, { data: Float32Array; shape: number[] }>();
      for (let s = sh.firstSentence; s < sh.firstSentence + sh.sentences; s++) {
        if (windowed.includes(s)) continue;
        const P = pieceCounts[s]!;
        const a = attention(s, l, P, encs[s]!.wordSpans);
        if (o.raw) raw.set(s, { data: a, shape: [o.heads, P, P] });
        const G = wordCounts[s]! + 2;
        if (o.word) word.set(s, { data: wordAttention(a, o.heads, P, encs[s]!.wordSpans), shape: [o.heads, G, G] });
      }
      if (o.raw) writeAttentionShard(dir, index, rawAttnName(l), k, raw);
      if (o.word) writeAttentionShard(dir, index, attnName(l), k, word);
    });
  }
  writeJsonAtomic(join(dir, INDEX_FILE), index);
}
