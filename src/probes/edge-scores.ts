/**
 * Scores of Tenney, Das & Pavlick 2019 (REFERENCES.md §3.1, §3.3):
 * - micro-F1 over every (target, label) decision at sigmoid ≥ 0.5 (jiant probing/analysis.py
 *   182-197, 442-456): TP = predicted ∧ gold, FP = predicted ∧ ¬gold, FN = ¬predicted ∧ gold;
 *   true negatives do not count. `keep` restricts the labels that count (SRL: core + ARGM);
 * - differential Δ(ℓ) = P(ℓ) − P(ℓ−1) with P(−1) = 0, not clipped; expected layer
 *   E_Δ[ℓ] = Σ_{ℓ=1}^{L} ℓ·Δ(ℓ) / Σ_{ℓ=1}^{L} Δ(ℓ) (analysis_bertlayer_ACL_camera_ready.ipynb,
 *   lines 4457-4499: min_layer = 1, no running max);
 * - centre of gravity of the mix weights E_s[ℓ] = Σ_{ℓ=0}^{L} ℓ·s_ℓ, s = softmax(w) (same
 *   notebook, weight_exp_layer, lines 5081-5093).
 */
export interface Decisions {
  gold: readonly string[];
  predicted: readonly string[];
}

export interface Prf {
  precision: number | null;
  recall: number | null;
  f1: number | null;
  tp: number;
  fp: number;
  fn: number;
}

export function prf(tp: number, fp: number, fn: number): Prf {
  const precision = tp + fp > 0 ? tp / (tp + fp) : null;
  const recall = tp + fn > 0 ? tp / (tp + fn) : null;
  const f1 = precision !== null && recall !== null ? (precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0) : tp + fp + fn === 0 ? null : 0;
  return { precision, recall, f1, tp, fp, fn };
}

export function microF1(items: Iterable<Decisions>, keep: (label: string) => boolean = () => true): Prf {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const it of items) {
    const gold = new Set(it.gold.filter(keep));
    const pred = new Set(it.predicted.filter(keep));
    for (const l of pred) if (gold.has(l)) tp++;
    else fp++;
    for (const l of gold) if (!pred.has(l)) fn++;
  }
  return prf(tp, fp, fn);
}

/** Precision, recall and F1 of each label (sorted by label). */
export function perLabel(items: Iterable<Decisions>, keep: (label: string) => boolean = () => true): Map<string, Prf> {
  const c = new Map<string, { tp: number; fp: number; fn: number }>();
  const get = (l: string) => c.get(l) ?? (c.set(l, { tp: 0, fp: 0, fn: 0 }), c.get(l)!);
  for (const it of items) {
    const gold = new Set(it.gold.filter(keep));
    const pred = new Set(it.predicted.filter(keep));
    for (const l of pred) (gold.has(l) ? get(l).tp++ : get(l).fp++);
    for (const l of gold) if (!pred.has(l)) get(l).fn++;
  }
  return new Map([...c.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([l, v]) => [l, prf(v.tp, v.fp, v.fn)]));
}

/** Δ(ℓ) for ℓ = 0..L from the cumulative scores P(0..L), with P(−1) = 0. */
export function differentials(cumulative: readonly number[]): number[] {
  return cumulative.map((p, l) => p - (l === 0 ? 0 : cumulative[l - 1]!));
}

/** E_Δ[ℓ] from cumulative scores P(0..L); null when Σ_{ℓ≥1} Δ(ℓ) is 0. */
export function expectedLayer(cumulative: readonly number[]): number | null {
  const d = differentials(cumulative);
  let num = 0;
  let den = 0;
  for (let l = 1; l < d.length; l++) {
    num += l * d[l]!;
    den += d[l]!;
  }
  return den === 0 ? null : num / den;
}

/** softmax of the scalar-mix parameters w. */
export function mixWeights(w: readonly number[]): number[] {
  const m = Math.max(...w);
  const e = w.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** E_s[ℓ] = Σ_{ℓ=0}^{L} ℓ·s_ℓ. */
export function centerOfGravity(s: readonly number[]): number {
  return s.reduce((a, v, l) => a + l * v, 0);
}
