/**
 * Agreement between a clustering and gold classes.
 * - purity = (1/N) Σ_clusters max_class |cluster ∩ class| (Manning, Raghavan & Schütze 2008,
 *   "Introduction to Information Retrieval" §16.3);
 * - adjusted Rand index (Hubert & Arabie 1985, "Comparing partitions", J. Classification 2:193):
 *   ARI = (Σ_ij C(n_ij,2) − [Σ_i C(a_i,2) Σ_j C(b_j,2)] / C(n,2)) /
 *         (½[Σ_i C(a_i,2) + Σ_j C(b_j,2)] − [Σ_i C(a_i,2) Σ_j C(b_j,2)] / C(n,2)),
 *   the formula scikit-learn's adjusted_rand_score implements; 1 when both partitions are one
 *   cluster each or identical (its special cases).
 */
const pairs = (n: number): number => (n * (n - 1)) / 2;

function contingency(clusters: readonly (string | number)[], classes: readonly (string | number)[]): { table: Map<string, Map<string, number>>; a: Map<string, number>; b: Map<string, number> } {
  if (clusters.length !== classes.length) throw new Error(`clusters (${clusters.length}) and classes (${classes.length}) differ in length`);
  const table = new Map<string, Map<string, number>>();
  const a = new Map<string, number>();
  const b = new Map<string, number>();
  clusters.forEach((k, i) => {
    const ck = String(k);
    const cc = String(classes[i]);
    const row = table.get(ck) ?? new Map<string, number>();
    row.set(cc, (row.get(cc) ?? 0) + 1);
    table.set(ck, row);
    a.set(ck, (a.get(ck) ?? 0) + 1);
    b.set(cc, (b.get(cc) ?? 0) + 1);
  });
  return { table, a, b };
}

export function purity(clusters: readonly (string | number)[], classes: readonly (string | number)[]): number {
  if (clusters.length === 0) return NaN;
  const { table } = contingency(clusters, classes);
  let sum = 0;
  for (const row of table.values()) sum += Math.max(...row.values());
  return sum / clusters.length;
}

export function adjustedRandIndex(clusters: readonly (string | number)[], classes: readonly (string | number)[]): number {
  const n = clusters.length;
  if (n === 0) return NaN;
  const { table, a, b } = contingency(clusters, classes);
  // scikit-learn's special cases: one cluster and one class, or every point its own cluster in both
  if ((a.size === 1 && b.size === 1) || (a.size === n && b.size === n)) return 1;
  let index = 0;
  for (const row of table.values()) for (const v of row.values()) index += pairs(v);
  let sa = 0;
  for (const v of a.values()) sa += pairs(v);
  let sb = 0;
  for (const v of b.values()) sb += pairs(v);
  const expected = (sa * sb) / pairs(n);
  const max = (sa + sb) / 2;
  return max === expected ? 0 : (index - expected) / (max - expected);
}
