/**
 * Word-level views of piece-level model outputs.
 *
 * Hidden states: a word's vector is the mean of its pieces' vectors (default), or the vector of
 * its first or last piece (`--pooling first|last`).
 *
 * Attention: the conversion of Clark et al. 2019, "What Does BERT Look At? An Analysis of
 * BERT's Attention" (BlackboxNLP), as their code's `convert_to_word_attention` does it: the
 * attention *to* a word is the sum of the attention to its pieces (so each row still sums to
 * 1), the attention *from* a word is the mean over its pieces' rows. [CLS] and [SEP] stay as
 * two extra positions (0 and W+1) so probes can measure attention to them.
 */
export type Pooling = 'mean' | 'first' | 'last';

export const POOLINGS: readonly Pooling[] = ['mean', 'first', 'last'];

/**
 * Pool one sentence's piece vectors into word vectors.
 * @param states  [P, H] row-major piece vectors of one sentence (P pieces incl. [CLS] at 0)
 * @param spans   [start, end) of each word's pieces (indices into the P positions)
 * @param out     receives W x H values starting at `outOffset` (a word with no pieces gets zeros)
 */
export function poolWords(
  states: Float32Array,
  hidden: number,
  spans: readonly (readonly [number, number])[],
  pooling: Pooling,
  out: Float32Array,
  outOffset = 0,
): void {
  for (let w = 0; w < spans.length; w++) {
    const [start, end] = spans[w]!;
    const dst = outOffset + w * hidden;
    if (end <= start) {
      out.fill(0, dst, dst + hidden);
      continue;
    }
    if (pooling === 'first' || pooling === 'last') {
      const p = pooling === 'first' ? start : end - 1;
      out.set(states.subarray(p * hidden, (p + 1) * hidden), dst);
      continue;
    }
    const n = end - start;
    for (let h = 0; h < hidden; h++) {
      let s = 0;
      for (let p = start; p < end; p++) s += states[p * hidden + h]!;
      out[dst + h] = s / n;
    }
  }
}

/**
 * The groups of piece positions that make up the W+2 word-level positions: [CLS], each word's
 * span, [SEP] (the last piece position, P-1).
 */
export function wordGroups(spans: readonly (readonly [number, number])[], numPieces: number): [number, number][] {
  return [[0, 1], ...spans.map(([s, e]) => [s, e] as [number, number]), [numPieces - 1, numPieces]];
}

/** How the rows of a split word's pieces become the word's row (Clark et al. `bpe_utils.py:61-73`). */
export type FromPieces = 'mean' | 'first';

/**
 * Clark et al. 2019 word-level attention for one sentence.
 * @param att  [heads, P, P] attention probabilities (row = from, column = to) of one sentence,
 *             without padding
 * @param from 'mean' (the paper, `bpe_utils.py:62`) or 'first' (the released code's default
 *             `mode="first"`, `bpe_utils.py:46-47, 82-84`: the first piece's row)
 * @returns    [heads, W+2, W+2]: to-word = sum over its pieces, from-word = mean over its pieces
 *             (or the first piece's row)
 */
export function wordAttention(
  att: Float32Array,
  heads: number,
  numPieces: number,
  spans: readonly (readonly [number, number])[],
  from: FromPieces = 'mean',
): Float32Array {
  const groups = wordGroups(spans, numPieces);
  const G = groups.length;
  const P = numPieces;
  const out = new Float32Array(heads * G * G);
  const colSums = new Float64Array(G);
  for (let h = 0; h < heads; h++) {
    const base = h * P * P;
    for (let gi = 0; gi < G; gi++) {
      const [rs, full] = groups[gi]!;
      const re = from === 'first' ? Math.min(full, rs + 1) : full;
      colSums.fill(0);
      for (let r = rs; r < re; r++) {
        const row = base + r * P;
        for (let gj = 0; gj < G; gj++) {
          const [cs, ce] = groups[gj]!;
          let s = 0;
          for (let c = cs; c < ce; c++) s += att[row + c]!;
          colSums[gj]! += s;
        }
      }
      const n = re - rs;
      const dst = h * G * G + gi * G;
      for (let gj = 0; gj < G; gj++) out[dst + gj] = n > 0 ? colSums[gj]! / n : 0;
    }
  }
  return out;
}
