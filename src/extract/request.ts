/**
 * The one activation vocabulary below the probes (issue 9 item 3): what a probe family asks the
 * extraction for. Replaces src/probes/types.ts `ProbeNeeds`. Names of what is requested follow
 * src/util/names.ts everywhere: `layer.N` (0 = embeddings), `attn.N` / `attn.N.H` (1-based).
 */
export interface ActivationRequest {
  /** Hidden-state indices 0..L (0 = embeddings output). */
  layers: number[];
  /** Attention layers 1..L; word level (Clark et al. 2019 pooling) unless `rawAttention`. */
  attentionLayers: number[];
  /**
   * 'word' (default): one vector per word, pieces pooled (mean unless the store says otherwise).
   * 'piece': also every word piece incl. [CLS]/[SEP], and each word's [start, end) piece span
   * (Tenney et al. 2019 edge probing pools its spans over pieces).
   */
  level?: 'word' | 'piece';
  /** Attention at piece level [heads, P, P] instead of word level. */
  rawAttention?: boolean;
  /** The MLM head's outputs (senses / masked-word probes). */
  mlmHead?: boolean;
  /** The probe runs the model itself with head masks (ablation); no store. */
  headMask?: boolean;
}

/** The union of several requests (e.g. several units or families on one store). */
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
