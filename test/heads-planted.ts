/**
 * Test-only planted attention (issue 11): random dependency trees, and piece-level attention in
 * which chosen heads put most of their weight on each word's gold head (dep->head) — everything
 * else is seeded noise. Word-level attention is Clark's conversion of the same maps.
 */
import type { Sentence } from '../src/corpus/types.js';
import { wordAttention } from '../src/extract/align.js';
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
