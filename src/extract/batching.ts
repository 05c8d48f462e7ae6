import type { ForwardBatch } from '../model/types.js';

/**
 * Length-bucketed batching: sequences sorted by length (longest first, so a batch that does
 * not fit fails at once; ties keep input order), cut into batches of at most `batchSize`
 * sequences and at most `maxTokens` padded tokens (batch size x its longest sequence; a single
 * sequence always fits). Each batch is padded only to its own longest sequence, so short
 * sentences do not pay for long ones, and the token cap keeps the memory of a batch of long
 * sentences the same as that of a batch of short ones. Callers restore the input order from
 * the indices each batch carries.
 */
export function planBatches(lengths: readonly number[], batchSize: number, maxTokens = Infinity): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer (got ${batchSize})`);
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const out: number[][] = [];
  let cur: number[] = [];
  for (const i of order) {
    // sorted longest first: the batch's padded length is the length of its first sequence
    const padded = cur.length ? lengths[cur[0]!]! : lengths[i]!;
    if (cur.length && (cur.length >= batchSize || (cur.length + 1) * padded > maxTokens)) {
      out.push(cur);
      cur = [];
    }
    cur.push(i);
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Default token cap of a batch: `batchSize` sequences of 128 pieces. */
export const defaultMaxTokens = (batchSize: number): number => batchSize * 128;

/** Pad id sequences into one ForwardBatch (attention mask 1 on real tokens, token types 0). */
export function padBatch(seqs: readonly ArrayLike<number>[], padId: number): ForwardBatch {
  const batchSize = seqs.length;
  const seqLen = Math.max(...seqs.map((s) => s.length));
  const inputIds = new Int32Array(batchSize * seqLen).fill(padId);
  const attentionMask = new Int32Array(batchSize * seqLen);
  const tokenTypeIds = new Int32Array(batchSize * seqLen);
  seqs.forEach((s, b) => {
    for (let t = 0; t < s.length; t++) {
      inputIds[b * seqLen + t] = s[t]!;
      attentionMask[b * seqLen + t] = 1;
    }
  });
  return { batchSize, seqLen, inputIds, attentionMask, tokenTypeIds };
}
