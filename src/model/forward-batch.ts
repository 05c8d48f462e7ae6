import { InputError } from '../util/errors.js';
import type { BertConfig, ForwardBatch, OutputFilter } from './types.js';

/**
 * Checks every engine makes before a forward pass, so both engines fail the same way on a
 * batch the model cannot take (too long, ids outside the vocabulary, wrong array sizes),
 * instead of reading out of bounds or returning garbage.
 */
export function validateBatch(batch: ForwardBatch, config: BertConfig): void {
  const { batchSize: B, seqLen: T } = batch;
  const n = B * T;
  const fix = 'build batches with the model\'s own tokenizer and pad every row to seqLen';
  if (!Number.isInteger(B) || !Number.isInteger(T) || B < 1 || T < 1) {
    throw new InputError('forward batch has an empty shape', { expected: 'batchSize >= 1 and seqLen >= 1', found: `batchSize ${B}, seqLen ${T}`, fix });
  }
  for (const [name, arr] of [['inputIds', batch.inputIds], ['attentionMask', batch.attentionMask], ['tokenTypeIds', batch.tokenTypeIds]] as const) {
    if (arr.length !== n) throw new InputError(`forward batch ${name} has the wrong size`, { expected: `${B} x ${T} = ${n} values`, found: `${arr.length}`, fix });
  }
  if (T > config.maxPositionEmbeddings) {
    throw new InputError('sequence longer than the model\'s position embeddings', {
      expected: `at most ${config.maxPositionEmbeddings} word pieces (max_position_embeddings)`,
      found: `${T}`,
      fix: 'split long sentences into windows (the extraction pipeline does this) or truncate them',
    });
  }
  for (let i = 0; i < n; i++) {
    const id = batch.inputIds[i]!;
    if (id < 0 || id >= config.vocabSize) {
      throw new InputError('token id outside the vocabulary', { expected: `0 <= id < ${config.vocabSize}`, found: `${id} at row ${Math.floor(i / T)}, position ${i % T}`, fix: 'use the tokenizer that belongs to this model' });
    }
    const tt = batch.tokenTypeIds[i]!;
    if (tt < 0 || tt >= config.typeVocabSize) {
      throw new InputError('token type id out of range', { expected: `0 <= token type < ${config.typeVocabSize}`, found: `${tt} at row ${Math.floor(i / T)}, position ${i % T}`, fix: 'use 0 for single sentences, 1 for the second segment of a pair' });
    }
  }
  if (batch.headMask && batch.headMask.length !== config.numHiddenLayers * config.numAttentionHeads) {
    throw new InputError('head mask has the wrong size', {
      expected: `[${config.numHiddenLayers}, ${config.numAttentionHeads}] = ${config.numHiddenLayers * config.numAttentionHeads} values`,
      found: `${batch.headMask.length}`,
      fix: 'give one factor per layer and head (1 keeps a head, 0 removes it)',
    });
  }
}

/** The hidden-state indices (0..L) and attention layers (1..L) an OutputFilter asks for. */
export function resolveFilter(want: OutputFilter | undefined, numLayers: number, batch?: ForwardBatch): { hidden: Set<number>; attentions: Set<number>; mlm: boolean; mlmPositions?: Int32Array } {
  const all = (from: number) => Array.from({ length: numLayers + 1 - from }, (_, i) => i + from);
  const hidden = new Set(want?.hiddenStates ?? all(0));
  const attentions = new Set(want?.attentions ?? all(1));
  for (const h of hidden) if (!Number.isInteger(h) || h < 0 || h > numLayers) throw new InputError('hidden state index out of range', { expected: `0..${numLayers}`, found: String(h), fix: 'use layer.0 (embeddings) to layer.L' });
  for (const a of attentions) if (!Number.isInteger(a) || a < 1 || a > numLayers) throw new InputError('attention layer out of range', { expected: `1..${numLayers}`, found: String(a), fix: 'attention layers are numbered from 1' });
  const mlmPositions = want?.mlmPositions;
  if (mlmPositions && batch) {
    const n = batch.batchSize * batch.seqLen;
    for (const p of mlmPositions) if (!Number.isInteger(p) || p < 0 || p >= n) throw new InputError('MLM position out of range', { expected: `0 <= b * seqLen + t < ${n}`, found: String(p), fix: 'give flat positions inside the batch' });
  }
  return { hidden, attentions, mlm: Boolean(want?.mlmLogits), ...(mlmPositions ? { mlmPositions } : {}) };
}

/** An all-ones head mask, [L, heads]. */
export function onesHeadMask(config: BertConfig): Float32Array {
  return new Float32Array(config.numHiddenLayers * config.numAttentionHeads).fill(1);
}

/** Asking a bare BertModel for MLM logits (both engines throw this). */
export function noMlmHead(): InputError {
  return new InputError('this model has no MLM head', {
    expected: 'a checkpoint with cls.predictions.* weights (BertForMaskedLM / BertForPreTraining)',
    found: 'a bare BertModel',
    fix: 'use a masked-LM checkpoint such as bert-base-uncased',
  });
}
