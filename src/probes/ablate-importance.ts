import type { Scalar, Tensor, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import type { TfjsBert } from '../model/bert-tfjs.js';
import type { MlmSet } from './ablate-mlm.js';

/**
 * Head importance (Michel, Levy & Neubig 2019, §4.1): I_h = E_x |∂L(x)/∂ξ_h|, with gradients
 * through BERT by tfjs autodiff (any tfjs backend). Every layer gets a head mask of shape
 * [B, heads, T, 1], one factor per example, head and query token: its gradient is the
 * per-token ⟨∂L/∂ctx_h, ctx_h⟩ of M16-PPB classifier_eval.py:237-243, and its sum over tokens
 * is the per-example ∂ℓ_x/∂ξ_h of HF run_bertology.py (batch size 1, ≈ line 112). So one pass
 * gives both recipes (REFERENCES.md §2.3, §2.6):
 *
 *   michel     Σ_x Σ_tokens |∂ℓ_x/∂ξ_{x,h,t}|   (abs per token);  layers 1..L−1 ÷ tokens, the
 *              last ÷ the positions that feed the loss (M16: examples, as only [CLS] does; here
 *              the chosen pieces); L2-normalised per layer (--normalize_pruning_by_layer, as
 *              the README command runs it)
 *   bertology  Σ_x |∂ℓ_x/∂ξ_h|                (abs per example); every layer ÷ tokens;
 *              L2-normalised per layer, then min-max over all heads to [0, 1]
 *
 * ℓ_x is sentence x's own masked-LM loss, the mean cross-entropy over its chosen pieces (what
 * BertForMaskedLM returns for a batch of one). Eval mode (no dropout), as both codes run it.
 */
export type Recipe = 'michel' | 'bertology';
export const RECIPES: readonly Recipe[] = ['michel', 'bertology'];

export interface HeadGradients {
  /** Σ_x Σ_t |∂ℓ_x/∂ξ_{x,h,t}|, [L·heads]. */
  absPerToken: Float64Array;
  /** Σ_x |∂ℓ_x/∂ξ_{x,h}|, [L·heads]. */
  absPerExample: Float64Array;
  /** ∂(Σ_x ℓ_x)/∂ξ_h, signed, [L·heads]: what a finite difference of the loss checks. */
  signed: Float64Array;
  /** Real tokens, sentences and chosen pieces seen. */
  tokens: number;
  examples: number;
  pieces: number;
}

/** Gradients of the MLM loss with respect to the head mask, at `headMask` ([L, heads]). */
export async function headGradients(bert: TfjsBert, set: MlmSet, headMask: Float32Array, onBatch?: () => void): Promise<HeadGradients> {
  const tf = bert.tf;
  const cfg = bert.config;
  const L = cfg.numHiddenLayers;
  const heads = cfg.numAttentionHeads;
  const H = cfg.hiddenSize;
  const V = cfg.vocabSize;
  bert.useInputGradients();
  const absPerToken = new Float64Array(L * heads);
  const absPerExample = new Float64Array(L * heads);
  const signed = new Float64Array(L * heads);
  for (const { batch, rows } of set.batches) {
    const { batchSize: B, seqLen: T } = batch;
    // The chosen pieces of the batch: flat row in [B·T], label, weight 1/(pieces of its sentence).
    const flat: number[] = [];
    const labels: number[] = [];
    const weights: number[] = [];
    rows.forEach((ex, b) => {
      const e = set.examples[ex]!;
      e.positions.forEach((p, k) => {
        flat.push(b * T + p);
        labels.push(e.labels[k]!);
        weights.push(1 / e.positions.length);
      });
    });
    const grads = tf.tidy(() => {
      const ids = tf.tensor2d(batch.inputIds, [B, T], 'int32');
      const am = tf.tensor2d(batch.attentionMask, [B, T], 'int32');
      const tt = tf.tensor2d(batch.tokenTypeIds, [B, T], 'int32');
      // Rows picked by a one-hot product, not tf.gather: gather's gradient (UnsortedSegmentSum)
      // has no wasm kernel.
      const at = tf.oneHot(tf.tensor1d(Int32Array.from(flat), 'int32'), B * T);
      const target = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), V);
      const w = tf.tensor1d(Float32Array.from(weights));
      const masks = Array.from({ length: L }, (_, l) => tf.mul(tf.ones([B, heads, T, 1]), tf.tensor4d(headMask.subarray(l * heads, (l + 1) * heads), [1, heads, 1, 1])) as Tensor4D);
      const loss = (...m: Tensor[]): Scalar => {
        const last = bert.encode(ids, am, tt, m as Tensor4D[]).hiddenStates[L]!;
        const picked = tf.matMul(at, tf.reshape(last, [B * T, H]) as Tensor2D);
        const logp = tf.logSoftmax(bert.mlmLogits(picked as Tensor2D));
        return tf.neg(tf.sum(tf.mul(tf.sum(tf.mul(logp, target), 1), w))) as Scalar;
      };
      return tf.grads(loss)(masks);
    });
    for (let l = 0; l < L; l++) {
      const g = (await grads[l]!.data()) as Float32Array; // [B, heads, T]
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < heads; h++) {
          let sum = 0;
          let abs = 0;
          for (let t = 0; t < T; t++) {
            const v = g[(b * heads + h) * T + t]!;
            sum += v;
            abs += Math.abs(v);
          }
          absPerToken[l * heads + h]! += abs;
          absPerExample[l * heads + h]! += Math.abs(sum);
          signed[l * heads + h]! += sum;
        }
      }
    }
    tf.dispose(grads);
    onBatch?.();
  }
  return { absPerToken, absPerExample, signed, tokens: set.tokens, examples: set.examples.length, pieces: set.pieces };
}

export interface Importance {
  /** After the recipe's count normalisation, before the layer/global normalisations. */
  raw: Float64Array;
  /** The recipe's importance score. */
  score: Float64Array;
}

/** The recipe's normalisations (see the top of this file). */
export function importanceScores(g: HeadGradients, recipe: Recipe, numLayers: number, heads: number): Importance {
  const raw = new Float64Array(numLayers * heads);
  for (let l = 0; l < numLayers; l++) {
    for (let h = 0; h < heads; h++) {
      const i = l * heads + h;
      // M16-PPB classifier_eval.py:245-247; HF run_bertology.py ≈126.
      raw[i] = recipe === 'michel' ? g.absPerToken[i]! / (l === numLayers - 1 ? g.pieces : g.tokens) : g.absPerExample[i]! / g.tokens;
    }
  }
  const score = Float64Array.from(raw);
  // Per layer: I[l,:] /= ||I[l,:]||_2 + 1e-20 (classifier_eval.py:249-252; run_bertology.py ≈128-131).
  for (let l = 0; l < numLayers; l++) {
    let norm = 0;
    for (let h = 0; h < heads; h++) norm += score[l * heads + h]! ** 2;
    norm = Math.sqrt(norm) + 1e-20;
    for (let h = 0; h < heads; h++) score[l * heads + h]! /= norm;
  }
  if (recipe === 'bertology') {
    // Global min-max to [0, 1] (run_bertology.py ≈133-134).
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of score) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    for (let i = 0; i < score.length; i++) score[i] = (score[i]! - lo) / (hi - lo || 1);
  }
  return { raw, score };
}
