/**
 * Sentence vectors as bert-as-service builds them (Xiao 2018; REFERENCES.md §5, BAS
 * server/bert_serving/server/graph.py:104-140, helper.py:96-111, bert/extract_features.py:102-117):
 * - `mean` (REDUCE_MEAN, the default): Σ_t h_t·m_t / (Σ_t m_t + 1e-10) over the word pieces of
 *   one layer, m = the input mask;
 * - `max` (REDUCE_MAX): max_t (h_t − (1 − m_t)·1e30);  `mean-max`: concat(mean, max);
 * - `cls` (CLS_TOKEN): h at [CLS].
 * By default [CLS] and [SEP] are inside the mask (mask_cls_sep False). `excludeSpecial`
 * (-mask_cls_sep) gives them mask 0, and, as in BAS where the same input_mask feeds the model,
 * masks them out of attention too. Default layer: −2 = the second-to-last encoder layer.
 * One departure: BAS truncates input to max_seq_len = 25 pieces; we keep every piece up to the
 * model's positions (longer texts are truncated there) — recorded in the manifest.
 */
import { planBatches } from '../extract/batching.js';
import type { Engine, LoadedModel } from '../model/types.js';

export type SentencePooling = 'mean' | 'max' | 'mean-max' | 'cls';
export const SENTENCE_POOLINGS: readonly SentencePooling[] = ['mean', 'max', 'mean-max', 'cls'];

export interface SentenceVectorOptions {
  layers: readonly number[];
  pooling: SentencePooling;
  excludeSpecial: boolean;
  batchSize: number;
  onBatch?: (sentences: number) => void;
}

export const vectorSize = (hidden: number, pooling: SentencePooling): number => (pooling === 'mean-max' ? 2 * hidden : hidden);

/**
 * Pool one sentence's piece states [T, H] (rows of a padded batch) with mask m (length T, 0/1)
 * into `out` (H, or 2H for mean-max).
 */
export function poolSentence(states: Float32Array, T: number, H: number, mask: ArrayLike<number>, pooling: SentencePooling, out: Float32Array): void {
  if (pooling === 'cls') {
    out.set(states.subarray(0, H));
    return;
  }
  if (pooling === 'mean' || pooling === 'mean-max') {
    let count = 0;
    const sum = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      if (!mask[t]) continue;
      count++;
      for (let h = 0; h < H; h++) sum[h] += states[t * H + h]!;
    }
    for (let h = 0; h < H; h++) out[h] = sum[h]! / (count + 1e-10);
  }
  if (pooling === 'max' || pooling === 'mean-max') {
    const at = pooling === 'max' ? 0 : H;
    for (let h = 0; h < H; h++) {
      let best = -Infinity;
      for (let t = 0; t < T; t++) best = Math.max(best, states[t * H + h]! - (1 - (mask[t] ? 1 : 0)) * 1e30);
      out[at + h] = best;
    }
  }
}

/** Piece ids of raw text with [CLS]/[SEP], truncated to the model's positions. */
export function encodeForVectors(model: LoadedModel, text: string): number[] {
  const ids = model.tokenizer.encodeText(text).ids;
  const max = model.config.maxPositionEmbeddings;
  return ids.length <= max ? ids : [...ids.slice(0, max - 1), model.tokenizer.sepId];
}

/**
 * Sentence vectors of many texts: layer → [N, D] (D = hidden or 2·hidden), in input order.
 * Batches are length-bucketed (batching.ts) so memory is one batch's states plus the result.
 */
export async function sentenceVectors(engine: Engine, model: LoadedModel, texts: readonly string[], opts: SentenceVectorOptions): Promise<Map<number, Float32Array>> {
  const H = model.config.hiddenSize;
  const D = vectorSize(H, opts.pooling);
  const seqs = texts.map((t) => encodeForVectors(model, t));
  const out = new Map(opts.layers.map((l) => [l, new Float32Array(texts.length * D)] as const));
  const padId = model.tokenizer.padId;
  for (const batch of planBatches(seqs.map((s) => s.length), opts.batchSize, opts.batchSize * 128)) {
    const T = Math.max(...batch.map((i) => seqs[i]!.length));
    const B = batch.length;
    const inputIds = new Int32Array(B * T).fill(padId);
    const attentionMask = new Int32Array(B * T);
    batch.forEach((i, b) => {
      const s = seqs[i]!;
      for (let t = 0; t < s.length; t++) {
        inputIds[b * T + t] = s[t]!;
        // mask_cls_sep: [CLS] (first) and [SEP] (last) get 0, in pooling and attention alike
        attentionMask[b * T + t] = opts.excludeSpecial && (t === 0 || t === s.length - 1) ? 0 : 1;
      }
    });
    const res = await engine.forward({ batchSize: B, seqLen: T, inputIds, attentionMask, tokenTypeIds: new Int32Array(B * T) }, { hiddenStates: [...opts.layers], attentions: [] });
    for (const l of opts.layers) {
      const states = res.hiddenStates[l]!.data;
      const dest = out.get(l)!;
      batch.forEach((i, b) => poolSentence(states.subarray(b * T * H, (b + 1) * T * H), T, H, attentionMask.subarray(b * T, (b + 1) * T), opts.pooling, dest.subarray(i * D, (i + 1) * D)));
    }
    opts.onBatch?.(B);
  }
  return out;
}

/** Rows scaled to unit length in place (zero rows stay zero), so a dot product is the cosine. */
export function normalizeRows(m: Float32Array, D: number): Float32Array {
  for (let i = 0; i < m.length / D; i++) {
    let n = 0;
    for (let d = 0; d < D; d++) n += m[i * D + d]! ** 2;
    const s = n > 0 ? 1 / Math.sqrt(n) : 0;
    for (let d = 0; d < D; d++) m[i * D + d]! *= s;
  }
  return m;
}

/**
 * The k rows of a unit-normalised index most cosine-similar to a unit query, best first
 * (ties: lower row first), skipping `exclude`.
 */
export function topKCosine(index: Float32Array, D: number, query: Float32Array, k: number, exclude = -1): { row: number; score: number }[] {
  const N = index.length / D;
  const best: { row: number; score: number }[] = [];
  for (let i = 0; i < N; i++) {
    if (i === exclude) continue;
    let s = 0;
    for (let d = 0; d < D; d++) s += index[i * D + d]! * query[d]!;
    if (best.length === k && s <= best[k - 1]!.score) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.score < s) at--;
    best.splice(at, 0, { row: i, score: s });
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * Label purity@k: for each query, the fraction of its k nearest neighbours (itself excluded)
 * that carry its label; the mean over queries.
 */
export function purityAtK(index: Float32Array, D: number, labels: readonly string[], queries: readonly number[], k: number): number {
  let sum = 0;
  for (const q of queries) {
    const nn = topKCosine(index, D, index.subarray(q * D, (q + 1) * D), k, q);
    sum += nn.filter((n) => labels[n.row] === labels[q]).length / nn.length;
  }
  return queries.length ? sum / queries.length : NaN;
}
