/**
 * How well one attention head, read as a parser, finds each dependency relation: Clark,
 * Khandelwal, Levy & Manning 2019 §4.2, as their `Syntax_Analysis.ipynb` cell 6 computes it
 * (clarkkev/attention-analysis@b609cfc898, `attn_head_predictor` lines 133-147,
 * `evaluate_predictor` lines 111-131, `offset_predictor` lines 149-155; REFERENCES.md §1.2).
 */

/** dep->head: word i's most-attended word (row i); head<-dep: the word attending most to i (column i). */
export type Direction = 'dep->head' | 'head<-dep';
export const DIRECTIONS: readonly Direction[] = ['dep->head', 'head<-dep'];

/** The baseline offsets the authors try: `range(-3, 3)` (line 173), so +3 is not among them. */
export const BASELINE_OFFSETS: readonly number[] = [-3, -2, -1, 0, 1, 2];

/**
 * Relations the possessive rule applies to: `poss` (Stanford Dependencies, the paper's PTB) and
 * its Universal Dependencies name `nmod:poss` (our choice, recorded in the manifest).
 */
export const POSS_RELATIONS: ReadonlySet<string> = new Set(['poss', 'nmod:poss']);
const POSSESSIVE_WORDS: ReadonlySet<string> = new Set(["'s", "s'"]);

/**
 * Predicted heads (1-based word positions, never 0 = ROOT) of one head's word-level map.
 * The map is [G, G] with G = n + 2 ([CLS] at 0, [SEP] at n+1), read from `map` at `offset`.
 * Steps as `attn_head_predictor`: transpose for head<-dep, zero the diagonal, drop the
 * [CLS]/[SEP] rows and columns, argmax (first maximum on ties, as numpy) + 1.
 */
export function attentionHeadPredictions(map: ArrayLike<number>, n: number, direction: Direction, offset = 0): Int32Array {
  const G = n + 2;
  const out = new Int32Array(n);
  for (let i = 1; i <= n; i++) {
    let best = -Infinity;
    let arg = 0;
    for (let j = 1; j <= n; j++) {
      const v = i === j ? 0 : direction === 'dep->head' ? map[offset + i * G + j]! : map[offset + j * G + i]!;
      if (v > best) {
        best = v;
        arg = j;
      }
    }
    out[i - 1] = arg;
  }
  return out;
}

/** `offset_predictor(k)`: word i (0-based) → clamp(i + k + 1, 0, n) (1-based, 0 = ROOT). */
export function offsetPredictions(n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(i + k + 1, 0), n);
  return out;
}

/**
 * Whether word i's prediction is correct (`evaluate_predictor`): p == gold head, except for a
 * possessive word followed by 's / s' (and p < n): then the prediction for that next word is
 * scored instead (paper §4.2).
 */
export function isCorrect(i: number, preds: ArrayLike<number>, heads: readonly number[], rels: readonly string[], words: readonly string[]): boolean {
  const n = words.length;
  const p = preds[i]!;
  const y = heads[i]!;
  if (POSS_RELATIONS.has(rels[i]!) && p < n && i + 1 < n && POSSESSIVE_WORDS.has(words[i + 1]!)) return preds[i + 1] === y;
  return p === y;
}

/**
 * Correct counts per relation for a fixed list of predictors (heads × directions, offsets).
 * Every word counts towards its relation and towards `all` (punct and root included, as the
 * authors' `all`).
 */
export class RelationCounts {
  readonly total = new Map<string, number>();
  readonly correct = new Map<string, Int32Array>();

  constructor(readonly predictors: number) {
    this.correct.set('all', new Int32Array(predictors));
    this.total.set('all', 0);
  }

  /** @param predict predictor index → its predictions for this sentence (1-based heads, length n) */
  add(words: readonly string[], heads: readonly number[], rels: readonly string[], predict: (p: number) => ArrayLike<number>): void {
    const n = words.length;
    const all = this.correct.get('all')!;
    for (const r of rels) {
      if (!this.correct.has(r)) {
        this.correct.set(r, new Int32Array(this.predictors));
        this.total.set(r, 0);
      }
      this.total.set(r, this.total.get(r)! + 1);
    }
    this.total.set('all', this.total.get('all')! + n);
    for (let p = 0; p < this.predictors; p++) {
      const preds = predict(p);
      for (let i = 0; i < n; i++) {
        if (isCorrect(i, preds, heads, rels, words)) {
          this.correct.get(rels[i]!)![p]!++;
          all[p]!++;
        }
      }
    }
  }

  /** Relations, `all` first, then by count (descending) and name. */
  relations(): string[] {
    return [...this.total.keys()].sort((a, b) => (a === 'all' ? -1 : b === 'all' ? 1 : this.total.get(b)! - this.total.get(a)! || a.localeCompare(b)));
  }

  accuracy(rel: string, p: number): number {
    const t = this.total.get(rel) ?? 0;
    return t ? this.correct.get(rel)![p]! / t : Number.NaN;
  }
}
