/**
 * Masked-LM probes: what the pre-training head predicts.
 * - fillMask: each [MASK] of a text ranked independently (the logits of one forward pass,
 *   softmax over the vocabulary at each masked position), as Hugging Face's fill-mask pipeline.
 * - pseudoLogLikelihood: PLL(ending | context) = Σ_t log P(w_t | everything else), each ending
 *   piece masked in turn with the context and the rest of the ending visible (Salazar et al.
 *   2020, "Masked Language Model Scoring", eq. 2; the context pieces are never masked).
 * Log-softmax is computed in float64 from the float32 logits.
 */
import { padBatch } from '../extract/batching.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { InputError } from '../util/errors.js';

export interface Candidate {
  token: string;
  id: number;
  probability: number;
}

export interface MaskPrediction {
  /** Position of the [MASK] among the pieces (0 = [CLS]). */
  position: number;
  candidates: Candidate[];
}

/** log-softmax of one row of logits, in float64. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
  return out;
}

/** The k most probable ids of a log-probability row, best first (ties: lower id first). */
export function topK(logProbs: Float64Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < logProbs.length; i++) {
    const v = logProbs[i]!;
    if (best.length === k && v <= logProbs[best[k - 1]!]!) continue;
    let at = best.length;
    while (at > 0 && logProbs[best[at - 1]!]! < v) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

export function requireMlmHead(model: LoadedModel): void {
  if (!model.hasMlmHead) {
    throw new InputError(`model ${model.source.id} has no masked-LM head`, {
      file: model.source.path ?? undefined,
      expected: 'a checkpoint with cls.predictions.* weights (BertForMaskedLM / BertForPreTraining)',
      found: 'encoder weights only',
      fix: 'use a checkpoint saved with its pre-training head, e.g. bert-base-uncased',
    });
  }
}

/** Logits [batch, T, vocab] of padded id sequences. */
async function mlmLogits(engine: Engine, seqs: readonly ArrayLike<number>[], padId: number): Promise<{ data: Float32Array; seqLen: number; vocab: number }> {
  const batch = padBatch(seqs, padId);
  const out = await engine.forward(batch, { hiddenStates: [], attentions: [], mlmLogits: true });
  const logits = out.mlmLogits!;
  return { data: logits.data, seqLen: logits.shape[1]!, vocab: logits.shape[2]! };
}

/** Ranks each [MASK] of `text` independently: the top k pieces with their probabilities. */
export async function fillMask(engine: Engine, model: LoadedModel, text: string, k: number): Promise<{ tokens: string[]; masks: MaskPrediction[] }> {
  requireMlmHead(model);
  const tok = model.tokenizer;
  const enc = tok.encodeText(text);
  const positions = enc.ids.map((id, i) => (id === tok.maskId ? i : -1)).filter((i) => i >= 0);
  if (positions.length === 0) {
    throw new InputError('no [MASK] in the text', { expected: 'a sentence with one or more [MASK] tokens', found: text.slice(0, 80), fix: 'write the gap as [MASK], e.g. "Paris is the [MASK] of France."' });
  }
  if (enc.ids.length > model.config.maxPositionEmbeddings) {
    throw new InputError('text is longer than the model accepts', { expected: `at most ${model.config.maxPositionEmbeddings} pieces`, found: `${enc.ids.length}`, fix: 'shorten the text' });
  }
  const { data, vocab } = await mlmLogits(engine, [enc.ids], tok.padId);
  const masks = positions.map((p) => {
    const lp = logSoftmax(data.subarray(p * vocab, (p + 1) * vocab));
    return { position: p, candidates: topK(lp, k).map((id) => ({ token: tok.idToToken(id), id, probability: Math.exp(lp[id]!) })) };
  });
  return { tokens: enc.tokens, masks };
}

export interface PllResult {
  /** Σ log P over the ending's pieces (natural log). */
  total: number;
  pieces: { token: string; logProb: number }[];
}

/**
 * Pseudo-log-likelihood of `endingIds` after `contextIds` (pieces without [CLS]/[SEP]): the
 * sequence [CLS] context ending [SEP] is copied once per ending piece with that piece replaced
 * by [MASK], and the log-probability of the original piece at that position is summed.
 */
export async function pseudoLogLikelihood(engine: Engine, model: LoadedModel, contextIds: readonly number[], endingIds: readonly number[], batchSize = 16): Promise<PllResult> {
  requireMlmHead(model);
  const tok = model.tokenizer;
  if (endingIds.length === 0) throw new InputError('empty ending', { expected: 'an ending with at least one word', found: '""', fix: 'remove the empty ending' });
  const ids = [tok.clsId, ...contextIds, ...endingIds, tok.sepId];
  if (ids.length > model.config.maxPositionEmbeddings) {
    throw new InputError('context and ending are longer than the model accepts', { expected: `at most ${model.config.maxPositionEmbeddings} pieces`, found: `${ids.length}`, fix: 'shorten the context' });
  }
  const first = 1 + contextIds.length;
  const pieces: PllResult['pieces'] = [];
  for (let start = 0; start < endingIds.length; start += batchSize) {
    const chunk = endingIds.slice(start, start + batchSize).map((_, j) => {
      const masked = ids.slice();
      masked[first + start + j] = tok.maskId;
      return masked;
    });
    const { data, seqLen, vocab } = await mlmLogits(engine, chunk, tok.padId);
    chunk.forEach((_, j) => {
      const pos = first + start + j;
      const row = data.subarray((j * seqLen + pos) * vocab, (j * seqLen + pos + 1) * vocab);
      const target = ids[pos]!;
      pieces.push({ token: tok.idToToken(target), logProb: logSoftmax(row)[target]! });
    });
  }
  return { total: pieces.reduce((a, p) => a + p.logProb, 0), pieces };
}
