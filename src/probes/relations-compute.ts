/**
 * The examples of `bert-probe relations` (Coenen et al. 2019's attention probe): the
 * model-wide attention vector of sampled word pairs of a split, read sentence by sentence from
 * the activations (src/probes/attention-pairs.ts has the definitions and the choices).
 */
import type { Sentence } from '../corpus/types.js';
import { wordAttention, type FromPieces } from '../extract/align.js';
import { RuntimeFailure } from '../util/errors.js';
import { mulberry32 } from '../util/random.js';
import { pairFeatureCount, pairFeatures, samplePairs, type WordPair } from './attention-pairs.js';
import type { AttentionReader, PieceTokenizer } from './heads-compute.js';

export interface PairSet {
  features: Float32Array;
  /** Features per pair. */
  F: number;
  pairs: WordPair[];
  /** Sentences without attention (longer than the model's positions), left out. */
  skipped: number;
}

export interface PairOptions {
  layers: readonly number[];
  negatives: number;
  symmetric: boolean;
  seed: number;
  fromPieces: FromPieces;
}

/** Word-level maps [heads, n+2, n+2] of one sentence for each layer, as the options ask. */
export async function sentenceWordMaps(reader: AttentionReader, tokenizer: PieceTokenizer | null, layers: readonly number[], s: number, words: readonly string[], fromPieces: FromPieces): Promise<Float32Array[]> {
  const H = reader.numHeads;
  const out: Float32Array[] = [];
  for (const l of layers) {
    if (fromPieces === 'mean' && reader.attentionLayers.includes(l)) {
      out.push((await reader.readAttention(l, s)).data);
      continue;
    }
    if (!reader.readRawAttention || !(reader.rawAttentionLayers ?? []).includes(l) || !tokenizer) {
      throw new RuntimeFailure(`the activations have no ${fromPieces === 'first' ? 'piece-level (raw) ' : ''}attention for layer ${l}; extract with --attention${fromPieces === 'first' ? ' --raw-attention' : ''}`);
    }
    const t = await reader.readRawAttention(l, s);
    const enc = tokenizer.encodeWords(words);
    if (enc.tokens.length !== t.shape[1]) throw new RuntimeFailure(`sentence ${s}: the tokenizer gives ${enc.tokens.length} pieces, the stored attention ${t.shape[1]}; was the store made with another model?`);
    out.push(wordAttention(t.data, H, t.shape[1]!, enc.wordSpans, fromPieces));
  }
  return out;
}

/**
 * Pairs of every sentence with attention, and their features. The negatives of sentence k are
 * drawn from a generator seeded by (seed, k), so a pair set does not depend on which other
 * sentences were read.
 */
export async function collectPairs(sentences: readonly Sentence[], reader: AttentionReader, tokenizer: PieceTokenizer | null, o: PairOptions): Promise<PairSet> {
  const H = reader.numHeads;
  const F = pairFeatureCount(o.layers.length, H, o.symmetric);
  const chunks: { pairs: WordPair[]; data: Float32Array }[] = [];
  let skipped = 0;
  let total = 0;
  for (let s = 0; s < sentences.length; s++) {
    if (!reader.hasAttention(s)) {
      skipped++;
      continue;
    }
    const sent = sentences[s]!;
    const pairs = samplePairs(s, sent.heads!, sent.deprels!, o.negatives, mulberry32((o.seed * 1_000_003 + s) >>> 0));
    if (!pairs.length) continue;
    const maps = await sentenceWordMaps(reader, tokenizer, o.layers, s, sent.words, o.fromPieces);
    const data = new Float32Array(pairs.length * F);
    pairFeatures(maps, H, sent.words.length, pairs, o.symmetric, data);
    chunks.push({ pairs, data });
    total += pairs.length;
  }
  const features = new Float32Array(total * F);
  const pairs: WordPair[] = [];
  let at = 0;
  for (const c of chunks) {
    features.set(c.data, at * F);
    pairs.push(...c.pairs);
    at += c.pairs.length;
  }
  return { features, F, pairs, skipped };
}
