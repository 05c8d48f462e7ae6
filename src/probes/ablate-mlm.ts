import { defaultMaxTokens, padBatch, planBatches } from '../extract/batching.js';
import type { Engine, ForwardBatch } from '../model/types.js';
import { InputError } from '../util/errors.js';
import { mulberry32 } from '../util/random.js';
import { logSoftmax } from './masked-lm.js';

/**
 * The metric head ablation protects by default (issue 12): masked-LM loss. Of each sentence's
 * word pieces (not [CLS]/[SEP]) max(1, round(15% of them)) are chosen at random (seeded), as
 * BERT's pre-training data does (Devlin et al. 2019 §3.1; google-research/bert
 * create_pretraining_data.py `create_masked_lm_predictions`: a fixed count per sequence, the
 * candidates shuffled). Mode `80-10-10`: a chosen piece becomes [MASK] with probability 0.8, a
 * uniformly random vocabulary id with 0.1, stays itself with 0.1 (same file: the random id is
 * drawn over the whole vocabulary). Mode `all-mask`: every chosen piece becomes [MASK].
 * The loss is the mean cross-entropy over all chosen pieces of the set (nats).
 *
 * Choice named in the manifest: the 15% count is over the content pieces (BERT's code counts
 * [CLS]/[SEP] too: 1 more piece at most in long sentences).
 */
export type MaskMode = '80-10-10' | 'all-mask';
export const MASK_MODES: readonly MaskMode[] = ['80-10-10', 'all-mask'];
export const MLM_RATE = 0.15;

export interface MlmExample {
  /** Pieces after masking, [CLS] … [SEP]. */
  ids: Int32Array;
  /** Chosen positions (ascending) and the original ids there. */
  positions: Int32Array;
  labels: Int32Array;
}

export interface MlmSet {
  examples: MlmExample[];
  /** Length-bucketed padded batches; `rows[i]` is the example in row i. */
  batches: { batch: ForwardBatch; rows: number[] }[];
  /** Chosen pieces over the set. */
  pieces: number;
  /** Real (unpadded) tokens over the set. */
  tokens: number;
}

export interface MaskingOptions {
  seed: number;
  mode: MaskMode;
  maskId: number;
  vocabSize: number;
  rate?: number;
}

/** Choose and replace pieces of every sentence; deterministic in the seed and the sentence order. */
export function maskSentences(encodings: readonly { ids: ArrayLike<number> }[], opts: MaskingOptions): MlmExample[] {
  const rate = opts.rate ?? MLM_RATE;
  const rand = mulberry32(opts.seed);
  return encodings.map((enc) => {
    const ids = Int32Array.from(enc.ids);
    const content = ids.length - 2;
    if (content < 1) return { ids, positions: new Int32Array(0), labels: new Int32Array(0) };
    const count = Math.max(1, Math.round(content * rate));
    // Partial Fisher–Yates over positions 1..content: the first `count` are a uniform sample.
    const cand = Array.from({ length: content }, (_, i) => i + 1);
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(rand() * (content - i));
      [cand[i], cand[j]] = [cand[j]!, cand[i]!];
    }
    const positions = Int32Array.from(cand.slice(0, count)).sort();
    const labels = Int32Array.from(positions, (p) => ids[p]!);
    for (const p of positions) {
      if (opts.mode === 'all-mask') ids[p] = opts.maskId;
      else {
        const r = rand();
        if (r < 0.8) ids[p] = opts.maskId;
        else if (r < 0.9) ids[p] = Math.floor(rand() * opts.vocabSize);
        // else: the piece stays itself
      }
    }
    return { ids, positions, labels };
  });
}

/**
 * Gradient batches hold at most this many padded tokens: backpropagation keeps every layer's
 * activations, and the wasm backend's heap is 2-4 GB (a bert-base batch of 16 × 128 overflowed it).
 */
export const GRADIENT_MAX_TOKENS = 512;

/** Examples cut into padded batches (longest first, at most batchSize sentences and maxTokens padded tokens, default batchSize × 128). */
export function mlmSet(examples: MlmExample[], batchSize: number, padId: number, maxTokens = defaultMaxTokens(batchSize)): MlmSet {
  const plan = planBatches(examples.map((e) => e.ids.length), batchSize, maxTokens);
  return {
    examples,
    batches: plan.map((rows) => ({ batch: padBatch(rows.map((i) => examples[i]!.ids), padId), rows })),
    pieces: examples.reduce((a, e) => a + e.positions.length, 0),
    tokens: examples.reduce((a, e) => a + e.ids.length, 0),
  };
}

/** Sentences whose pieces fit the model's positions (longer ones are left out and counted). */
export function fitting<T extends { ids: ArrayLike<number> }>(encodings: readonly T[], maxPositions: number): { kept: T[]; tooLong: number } {
  const kept = encodings.filter((e) => e.ids.length <= maxPositions);
  return { kept, tooLong: encodings.length - kept.length };
}

export interface MlmScore {
  /** Mean cross-entropy over every chosen piece of the set (the metric). */
  loss: number;
  /** Σ over sentences of each sentence's mean cross-entropy (the objective head importance differentiates). */
  exampleLossSum: number;
  pieces: number;
}

/** −log softmax(logits)[label], in float64. */
export function crossEntropy(logits: Float32Array, offset: number, vocab: number, label: number): number {
  return -logSoftmax(logits.subarray(offset, offset + vocab))[label]!;
}

/** The MLM loss of the set with `headMask` ([L, heads], 1 keeps a head) on any engine. */
export async function mlmScore(engine: Engine, set: MlmSet, headMask?: Float32Array): Promise<MlmScore> {
  let total = 0;
  let perExample = 0;
  for (const { batch, rows } of set.batches) {
    const at: number[] = [];
    rows.forEach((ex, b) => set.examples[ex]!.positions.forEach((p) => at.push(b * batch.seqLen + p)));
    const out = await engine.forward({ ...batch, ...(headMask ? { headMask } : {}) }, { hiddenStates: [], attentions: [], mlmLogits: true, mlmPositions: Int32Array.from(at) });
    const logits = out.mlmLogits!;
    const V = logits.shape[1]!;
    let row = 0;
    rows.forEach((ex) => {
      const e = set.examples[ex]!;
      let s = 0;
      e.positions.forEach((_, k) => (s += crossEntropy(logits.data, row++ * V, V, e.labels[k]!)));
      total += s;
      if (e.positions.length) perExample += s / e.positions.length;
    });
  }
  if (set.pieces === 0) throw new InputError('no word piece to predict', { expected: 'sentences with at least one word piece', found: `${set.examples.length} empty sentences`, fix: 'use a corpus with text' });
  return { loss: total / set.pieces, exampleLossSum: perExample, pieces: set.pieces };
}
