/**
 * Minimum description length probing, online code (Voita & Titov 2020, "Information-Theoretic
 * Probing with Minimum Description Length"; REFERENCES.md §6.2):
 * - the shuffled training set is cut at fractions 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.25, 12.5, 25,
 *   50, 100 % (mdl_configs/online_l0.yml:34): t_i = floor(fraction_i · N);
 * - for each block i < S, a fresh probe trained on examples [0, t_i) encodes block
 *   [t_i, t_{i+1}) with its summed cross-entropy; the first block is sent uniformly;
 * - L_online = t_1 · log2 K + Σ_{i=1}^{S−1} Σ_{y ∈ block i+1} −log2 p_θi(y|x) (the model
 *   trained on 100 % is not used); L_uniform = N · log2 K; compression = L_uniform / L_online.
 * Everything is in bits: the authors' notebook adds nats from CrossEntropyLoss to bits
 * (Eval_MDL_online_code.ipynb cells 17-21); we convert (÷ ln 2) before adding.
 */
export const MDL_FRACTIONS = [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.0625, 0.125, 0.25, 0.5, 1] as const;

/** Block ends t_1 … t_S for N examples (t_S = N). */
export function blockEnds(n: number, fractions: readonly number[] = MDL_FRACTIONS): number[] {
  return fractions.map((f, i) => (i === fractions.length - 1 ? n : Math.floor(f * n)));
}

export interface Codelength {
  uniformBits: number;
  onlineBits: number;
  compression: number;
}

/**
 * Combine the per-block codelengths. `blockNats[i]` is the summed cross-entropy (natural log)
 * of block i+1 ([t_{i+1}, t_{i+2})) under the probe trained on [0, t_{i+1}), for i = 0..S−2.
 */
export function onlineCodelength(n: number, numClasses: number, ends: readonly number[], blockNats: readonly number[]): Codelength {
  if (blockNats.length !== ends.length - 1) throw new Error(`MDL: ${blockNats.length} block codelengths for ${ends.length} blocks (expected ${ends.length - 1})`);
  const log2K = Math.log2(numClasses);
  const onlineBits = ends[0]! * log2K + blockNats.reduce((a, v) => a + v / Math.LN2, 0);
  const uniformBits = n * log2K;
  return { uniformBits, onlineBits, compression: uniformBits / onlineBits };
}
