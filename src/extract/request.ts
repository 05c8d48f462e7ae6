/**
 * The one activation vocabulary below the probes (issue 9 item 3; PLATFORM.md §4): what a probe
 * asks extraction for, and what any activation source (our store, several --shard stores, or a
 * structural-probes .hdf5 file via --activations) gives back. Replaces src/probes/types.ts
 * `ProbeNeeds`. Names follow DESIGN.md: hidden state `layer.N` (0 = embeddings), attention
 * `attn.N.H` (1-based).
 *
 * Owner: `store` (issue 9). Implementations: src/extract/store.ts (ActivationStore) and
 * src/extract/sources/ (openActivations, the hdf5 source).
 */
import type { ArrayTensor } from '../model/types.js';

export interface ActivationRequest {
  /** Hidden-state indices 0..L (0 = embeddings output). */
  layers: number[];
  /** Attention layers 1..L; word level (Clark et al. 2019 pooling) unless `rawAttention`. */
  attentionLayers: number[];
  /**
   * 'word' (default): one vector per word, pieces pooled (the store's pooling, mean by default).
   * 'piece': the hidden states of every word piece incl. [CLS]/[SEP] and each word's [start, end)
   * piece span (Tenney et al. 2019 edge probing pools its spans over pieces); word-level reads of
   * such a store pool the pieces on read.
   */
  level?: 'word' | 'piece';
  /** Attention at piece level [heads, P, P] instead of word level. */
  rawAttention?: boolean;
  /** The MLM head's outputs (senses / masked-word probes). */
  mlmHead?: boolean;
  /** The probe runs the model itself with head masks (ablation); no store. */
  headMask?: boolean;
}

/** The union of several requests (several units or families reading one store). */
export function mergeRequests(...reqs: readonly ActivationRequest[]): ActivationRequest {
  const uniq = (xs: number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);
  return {
    layers: uniq(reqs.flatMap((r) => r.layers)),
    attentionLayers: uniq(reqs.flatMap((r) => r.attentionLayers)),
    level: reqs.some((r) => r.level === 'piece') ? 'piece' : 'word',
    rawAttention: reqs.some((r) => r.rawAttention) || undefined,
    mlmHead: reqs.some((r) => r.mlmHead) || undefined,
    headMask: reqs.some((r) => r.headMask) || undefined,
  };
}

/** Piece-level hidden states of a batch of sentences. */
export interface PieceBatch {
  /** [Σ pieces, hidden], every piece incl. [CLS] and [SEP], sentences in the order asked. */
  vectors: Float32Array;
  pieceCounts: number[];
  /** Per sentence, per word: [start, end) of its pieces, relative to the sentence's first piece ([CLS] = 0). */
  wordSpans: [number, number][][];
}

/**
 * Where a probe reads activations from. Sentence indices are 0-based indices into the corpus
 * (split) the source was opened for. Reads are positional: only the bytes of the sentences asked
 * for are read, never a whole split or layer, so memory stays flat in corpus size and in the
 * number of layers read (issue 9 item 4). What a source holds is told by its lists and flags;
 * a read of something absent throws (MissingActivation, src/extract/store.ts).
 */
export interface ActivationSource {
  readonly numSentences: number;
  readonly hiddenSize: number;
  /** 0 when the source holds no attention. */
  readonly numHeads: number;
  /** Hidden-state indices readable at word level (0 = embeddings). */
  readonly layers: readonly number[];
  /** Word-level attention layers (1-based). */
  readonly attentionLayers: readonly number[];
  /** Piece-level attention layers (1-based); empty when none. */
  readonly rawAttentionLayers: readonly number[];
  /** Words per sentence (checked equal to the corpus's when opened). */
  readonly wordCounts: readonly number[];
  /** True when readPieces works for every layer in `layers`. */
  readonly hasPieces: boolean;
  /** What this source is, for manifest.json (kind, path(s), model, pooling, ...). */
  readonly description: Record<string, unknown>;
  /**
   * Word-level vectors [Σ words of these sentences, hiddenSize], in the order given: a view from
   * the start of a buffer of `alloc(bytes)` when given (util/buffer-pool.ts), else a fresh array.
   */
  readWords(layer: number, sentences: readonly number[], alloc?: (bytes: number) => ArrayBuffer): Promise<Float32Array>;
  /** Piece level (stores built with level 'piece', piece-level hdf5); throws unless `hasPieces`. */
  readPieces(layer: number, sentences: readonly number[]): Promise<PieceBatch>;
  /** Word-level attention [heads, W+2, W+2] of one sentence ([CLS] = 0, [SEP] = W+1). */
  readAttention(layer: number, sentence: number): Promise<ArrayTensor>;
  /** Piece-level attention [heads, P, P] of one sentence ([CLS] = 0, [SEP] = P−1). */
  readRawAttention(layer: number, sentence: number): Promise<ArrayTensor>;
  /** False for sentences whose attention was not stored (longer than the model's positions). */
  hasAttention(sentence: number): boolean;
  /** Release open files; call when the run ends. */
  close(): Promise<void>;
}

/**
 * The array readWords returns: `length` floats from the start of `alloc(bytes)`, or a fresh
 * zeroed array. Not zeroed from `alloc`: every reader writes every value.
 */
export function wordArray(length: number, alloc?: (bytes: number) => ArrayBuffer): Float32Array {
  if (!alloc) return new Float32Array(length);
  const buffer = alloc(length * 4);
  if (buffer.byteLength < length * 4) throw new Error(`readWords: a buffer of ${buffer.byteLength} bytes for ${length * 4}`);
  return new Float32Array(buffer, 0, length);
}
