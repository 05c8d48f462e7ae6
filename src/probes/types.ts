/**
 * What a probe declares it needs, so extraction keeps only that (LIT-style specs).
 */
export interface ProbeNeeds {
  /** Hidden-state indices 0..L of word-level vectors. */
  layers: number[];
  /** Word-level attention (Clark et al. pooling) for these layers 1..L; empty for none. */
  attentionLayers: number[];
  /** Raw (piece-level) attention instead of word-level. */
  rawAttention?: boolean;
  mlmHead?: boolean;
  /** The probe runs the model itself with head masks (ablation); no store. */
  headMask?: boolean;
}
