import type { ArrayTensor } from '../model/types.js';

/**
 * Where a probe reads activations from: our store (one folder or several `--shard K/N` folders),
 * or features computed elsewhere (`--activations PATH`: a store in docs/store-format.md's format,
 * or structural-probes' hdf5). Sentence indices are corpus indices (0-based, corpus order).
 *
 * Reads are positional: only the bytes of the sentences asked for are read, never a whole split
 * or layer, so memory stays flat in corpus size and in the number of layers read (issue 9 item 4).
 */
export interface ActivationSource {
  readonly numSentences: number;
  readonly hiddenSize: number;
  /** 0 when the source holds no attention. */
  readonly numHeads: number;
  /** Hidden-state indices available (0 = embeddings). */
  readonly layers: readonly number[];
  /** Word-level attention layers available (1-based). */
  readonly attentionLayers: readonly number[];
  /** Words per sentence (equal to the corpus's). */
  readonly wordCounts: readonly number[];
  /** True when readPieces works (stores built with level 'piece', hdf5 at piece level). */
  readonly hasPieces: boolean;
  /** What this source is, for manifest.json (kind, path(s), model, pooling, ...). */
  readonly description: Record<string, unknown>;
  /** Word-level vectors [Σ words of these sentences, hiddenSize], in the order given. */
  readWords(layer: number, sentences: readonly number[]): Promise<Float32Array>;
  /**
   * Piece level: vectors [Σ pieces, hiddenSize] in the order given (every piece incl. [CLS]
   * and [SEP]), pieces per sentence, and each word's [start, end) span, relative to its
   * sentence's first piece ([CLS] = 0). Throws when `hasPieces` is false.
   */
  readPieces(layer: number, sentences: readonly number[]): Promise<PieceBatch>;
  /** Word-level attention [heads, W+2, W+2] of one sentence ([CLS] = 0, [SEP] = W+1). */
  readAttention(layer: number, sentence: number): Promise<ArrayTensor>;
  /** False for sentences whose attention was not stored (longer than the model's positions). */
  hasAttention(sentence: number): boolean;
  /** Release open file handles. */
  close(): Promise<void>;
}

export interface PieceBatch {
  vectors: Float32Array;
  pieceCounts: number[];
  wordSpans: [number, number][][];
}
