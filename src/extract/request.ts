/**
 * The one activation vocabulary below the probes (issue 9 item 3; PLATFORM.md §4): what a probe
 * asks extraction for, and what any activation source (our store, several --shard stores, or a
 * structural-probes .hdf5 file via --activations) gives back. Names follow DESIGN.md: hidden
 * state `layer.N` (0 = embeddings), attention `attn.N.H` (1-based).
 *
 * Owner: `store` (issue 9). Landed by `platform` verbatim from PLATFORM.md §4 so probe families
 * compile against it; the implementations live in src/extract/store.ts and src/extract/sources/.
 */
import type { ArrayTensor } from '../model/types.js';

export interface ActivationRequest {
  /** Hidden-state indices 0..L. */
  layers: number[];
  /** Word-level attention (Clark et al. pooling) of these layers 1..L; empty for none. */
  attentionLayers: number[];
  /** piece: every word piece incl. [CLS]/[SEP] (edge-probing spans). Default word. */
  level?: 'word' | 'piece';
  /** Raw (piece-level) attention instead of word-level. */
  rawAttention?: boolean;
  mlmHead?: boolean;
  /** The probe runs the model itself with head masks (ablation); no store. */
  headMask?: boolean;
}

export interface ActivationSource {
  readonly numSentences: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly layers: readonly number[];
  readonly attentionLayers: readonly number[];
  readonly wordCounts: readonly number[];
  /** For the manifest. */
  readonly description: Record<string, unknown>;
  /** [Σ words of these sentences, hidden] in the order given: positional reads, never a whole split. */
  readWords(layer: number, sentences: readonly number[]): Promise<Float32Array>;
  /** Piece level (stores built with level 'piece'): vectors [Σ pieces, hidden] and each word's [start,end) piece span. */
  readPieces?(layer: number, sentences: readonly number[]): Promise<{ vectors: Float32Array; pieceCounts: number[]; wordSpans: [number, number][][] }>;
  /** Word level [heads, W+2, W+2]. */
  readAttention(layer: number, sentence: number): Promise<ArrayTensor>;
  hasAttention(sentence: number): boolean;
}
