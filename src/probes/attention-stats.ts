/**
 * Surface statistics of attention heads at word-piece level: Clark, Khandelwal, Levy & Manning
 * 2019, "What Does BERT Look At?", §3.1–3.3. Definitions as in the authors' notebook
 * (clarkkev/attention-analysis@b609cfc898 `General_Analysis.ipynb` cell 5, token stats, and
 * cell 7, entropies; REFERENCES.md §1.3–1.4):
 *
 *   avg[key][h] = mean over sentences of  Σ_{i,j} A_h[i,j]·S_key[i,j] / denom_key
 *
 * with S_cls/S_sep/S_punct[i,j] = 1 where piece j is [CLS] / [SEP] / "." or ",";
 * S_self = I, S_next[i,j] = 1 where j = i+1 (the notebook's `right`, np.eye(n, n, 1)),
 * S_prev[i,j] = 1 where j = i−1 (`left`); S_sep_sep = [SEP] rows × [SEP] columns,
 * S_rest_sep = non-[SEP] rows × [SEP] columns. denom = n, except sep_sep: the number of [SEP]
 * rows and rest_sep: n − that number. (The authors' documents were "[CLS] A [SEP] B [SEP]", so
 * their 2 and n−2 are exactly these counts; our sentences have one [SEP].)
 *
 * Entropies: Ã = 0.9999·A + 0.0001/n; entropy = mean over sentences of the mean over every query
 * row i (including [CLS]/[SEP]) of −Σ_j Ã[i,j] ln Ã[i,j] (nats); cls_entropy = the same for row 0
 * only; uniform = mean over sentences of ln n.
 */

export const SURFACE_KEYS = ['cls', 'sep', 'punct', 'self', 'next', 'prev', 'sep_sep', 'rest_sep'] as const;
export type SurfaceKey = (typeof SURFACE_KEYS)[number];

/** Piece strings Clark counts as punctuation (`token == "." or token == ","`). */
export const PUNCT_PIECES: ReadonlySet<string> = new Set(['.', ',']);

export interface HeadSurfaceStats {
  /** Per key, one value per head. */
  attention: Record<SurfaceKey, number[]>;
  entropy: number[];
  clsEntropy: number[];
  /** Mean ln n over the sentences (the entropy of uniform attention). */
  uniformEntropy: number;
  sentences: number;
}

/** Accumulates the statistics of one layer's heads over sentences (one call per sentence). */
export class SurfaceAccumulator {
  private readonly sums: Record<SurfaceKey, Float64Array>;
  private readonly entropy: Float64Array;
  private readonly clsEntropy: Float64Array;
  private uniform = 0;
  private docs = 0;

  constructor(readonly heads: number) {
    this.sums = Object.fromEntries(SURFACE_KEYS.map((k) => [k, new Float64Array(heads)])) as Record<SurfaceKey, Float64Array>;
    this.entropy = new Float64Array(heads);
    this.clsEntropy = new Float64Array(heads);
  }

  /**
   * @param att    [heads, n, n] piece-level attention of one sentence (row = from, column = to)
   * @param tokens the n piece strings ([CLS] … [SEP])
   */
  add(att: ArrayLike<number>, tokens: readonly string[]): void {
    const n = tokens.length;
    if (att.length !== this.heads * n * n) throw new RangeError(`attention has ${att.length} values, expected ${this.heads}×${n}×${n}`);
    const isSep = tokens.map((t) => t === '[SEP]');
    const isCls = tokens.map((t) => t === '[CLS]');
    const isPunct = tokens.map((t) => PUNCT_PIECES.has(t));
    const seps = isSep.filter(Boolean).length;
    const ln = Math.log;
    for (let h = 0; h < this.heads; h++) {
      const base = h * n * n;
      let cls = 0, sep = 0, punct = 0, self = 0, next = 0, prev = 0, sepSep = 0, restSep = 0, ent = 0, entCls = 0;
      for (let i = 0; i < n; i++) {
        const row = base + i * n;
        let rowEnt = 0;
        for (let j = 0; j < n; j++) {
          const a = att[row + j]!;
          if (isCls[j]) cls += a;
          if (isSep[j]) {
            sep += a;
            if (isSep[i]) sepSep += a;
            else restSep += a;
          }
          if (isPunct[j]) punct += a;
          const s = 0.9999 * a + 0.0001 / n;
          rowEnt -= s * ln(s);
        }
        self += att[row + i]!;
        if (i + 1 < n) next += att[row + i + 1]!;
        if (i > 0) prev += att[row + i - 1]!;
        ent += rowEnt;
        if (i === 0) entCls = rowEnt;
      }
      this.sums.cls[h]! += cls / n;
      this.sums.sep[h]! += sep / n;
      this.sums.punct[h]! += punct / n;
      this.sums.self[h]! += self / n;
      this.sums.next[h]! += next / n;
      this.sums.prev[h]! += prev / n;
      if (seps > 0) this.sums.sep_sep[h]! += sepSep / seps;
      if (n - seps > 0) this.sums.rest_sep[h]! += restSep / (n - seps);
      this.entropy[h]! += ent / n;
      this.clsEntropy[h]! += entCls;
    }
    this.uniform += ln(n);
    this.docs++;
  }

  result(): HeadSurfaceStats {
    const d = this.docs || 1;
    const avg = (a: Float64Array): number[] => Array.from(a, (v) => (this.docs ? v / d : Number.NaN));
    return {
      attention: Object.fromEntries(SURFACE_KEYS.map((k) => [k, avg(this.sums[k])])) as Record<SurfaceKey, number[]>,
      entropy: avg(this.entropy),
      clsEntropy: avg(this.clsEntropy),
      uniformEntropy: this.docs ? this.uniform / d : Number.NaN,
      sentences: this.docs,
    };
  }
}
