/**
 * Metrics of the structural probe, defined as in Hewitt & Manning 2019 (§3, "Evaluation
 * metrics") and computed as their reference code does (github.com/john-hewitt/structural-probes,
 * structural-probes/reporter.py: report_uuas, prims_matrix_to_edges, report_spearmanr,
 * report_root_acc, get_nopunct_argmin). Kept free of probe specifics so later probes reuse them.
 *
 * Word indices are 0-based; matrices are row-major n×n.
 */
import type { Edge } from './trees.js';

/**
 * Punctuation by gold POS. reporter.py excludes exactly these PTB tags; for treebanks with
 * Universal POS we also exclude UPOS PUNCT (issue 6), which adds tags such as HYPH and NFP.
 */
export const PTB_PUNCT_TAGS: ReadonlySet<string> = new Set(["''", ',', '.', ':', '``', '-LRB-', '-RRB-']);

export function isPunct(xpos: string | undefined, upos: string | undefined): boolean {
  return (xpos !== undefined && PTB_PUNCT_TAGS.has(xpos)) || upos === 'PUNCT';
}

export function punctMask(n: number, xpos?: readonly string[], upos?: readonly string[]): boolean[] {
  return Array.from({ length: n }, (_, i) => isPunct(xpos?.[i], upos?.[i]));
}

/**
 * Minimum spanning tree over the non-punctuation words, as reporter.py's prims_matrix_to_edges
 * builds it (despite its name, Kruskal's algorithm): all pairs sorted by distance with a stable
 * sort, ties kept in row-major (i, j) order, joined with union-find. Punctuation never enters
 * the tree. `dist` is read as symmetric: the upper triangle (i < j) is used, which gives the
 * same tree as the reference's full-matrix pass on a symmetric matrix. Edges come back as
 * [i, j] with i < j, in the order they were added.
 */
export function mstEdges(dist: ArrayLike<number>, n: number, exclude?: readonly boolean[]): Edge[] {
  const pairs: number[] = [];
  for (let i = 0; i < n; i++) {
    if (exclude?.[i]) continue;
    for (let j = i + 1; j < n; j++) {
      if (exclude?.[j]) continue;
      pairs.push(i * n + j);
    }
  }
  // Array.prototype.sort is stable (ES2019), and pairs are in row-major order: ties deterministic.
  pairs.sort((a, b) => dist[a]! - dist[b]!);
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const edges: Edge[] = [];
  for (const p of pairs) {
    const i = Math.floor(p / n);
    const j = p % n;
    const a = find(i);
    const b = find(j);
    if (a !== b) {
      parent[a] = b;
      edges.push([i, j]);
    }
  }
  return edges;
}

const edgeKey = (e: Edge): number => {
  const a = Math.min(e[0], e[1]);
  const b = Math.max(e[0], e[1]);
  return a * 100003 + b;
};

/** Correct (shared undirected) edges and gold edge count of one sentence. */
export function edgeOverlap(gold: readonly Edge[], predicted: readonly Edge[]): { correct: number; total: number } {
  const g = new Set(gold.map(edgeKey));
  const p = new Set(predicted.map(edgeKey));
  let correct = 0;
  for (const k of p) if (g.has(k)) correct++;
  return { correct, total: g.size };
}

/**
 * UUAS (undirected unlabeled attachment score): over all sentences, the fraction of gold
 * undirected edges that the predicted MST contains (reporter.py report_uuas: one ratio over the
 * whole split, not a mean of sentence ratios). As in the reference, the gold edges are the MST
 * of the gold distances without punctuation, which is the gold tree's edges between
 * non-punctuation words whenever punctuation words are leaves.
 */
export function uuas(sentences: readonly { gold: readonly Edge[]; predicted: readonly Edge[] }[]): number {
  let correct = 0;
  let total = 0;
  for (const s of sentences) {
    const o = edgeOverlap(s.gold, s.predicted);
    correct += o.correct;
    total += o.total;
  }
  return total === 0 ? NaN : correct / total;
}

/** Ranks 1..n with ties given their average rank (scipy.stats.rankdata 'average'). */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]! || a - b);
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && x[idx[j + 1]!] === x[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = r;
    i = j + 1;
  }
  return ranks;
}

/** Pearson correlation; NaN when either side is constant (as scipy returns). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  if (n !== b.length) throw new Error(`pearson: lengths differ (${n} vs ${b.length})`);
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - ma;
    const db = b[i]! - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return NaN;
  return sab / Math.sqrt(saa * sbb);
}

/** Spearman's rank correlation: Pearson over average ranks (scipy.stats.spearmanr). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(averageRanks(a), averageRanks(b));
}

export interface LengthAveraged {
  /** Mean over sentence lengths minLength..maxLength present in the data. */
  value: number;
  /** Mean correlation for every sentence length seen (all lengths, not only 5–50). */
  perLength: Record<number, number>;
  /** Correlations that were undefined (a constant prediction) and so left out of the means. */
  undefinedCount: number;
}

/**
 * Average correlations within each sentence length, then over the lengths minLength..maxLength
 * present (reporter.py report_spearmanr: lengths 5–50). Undefined correlations (NaN, from a
 * constant prediction) are left out of the means and counted; the reference would return NaN.
 */
export function lengthAveraged(byLength: Map<number, number[]>, minLength = 5, maxLength = 50): LengthAveraged {
  const perLength: Record<number, number> = {};
  let undefinedCount = 0;
  for (const [len, values] of [...byLength].sort((a, b) => a[0] - b[0])) {
    const ok = values.filter((v) => !Number.isNaN(v));
    undefinedCount += values.length - ok.length;
    if (ok.length > 0) perLength[len] = ok.reduce((s, v) => s + v, 0) / ok.length;
  }
  const inRange = Object.entries(perLength)
    .filter(([len]) => Number(len) >= minLength && Number(len) <= maxLength)
    .map(([, v]) => v);
  const value = inRange.length === 0 ? NaN : inRange.reduce((s, v) => s + v, 0) / inRange.length;
  return { value, perLength, undefinedCount };
}

/**
 * DSpr.: for every word, Spearman between its row of predicted distances and its row of gold
 * distances (all words, punctuation included, as in the reference); averaged within each
 * sentence length, then over lengths 5–50.
 */
export function distanceSpearman(
  sentences: readonly { n: number; predicted: ArrayLike<number>; gold: ArrayLike<number> }[],
  minLength = 5,
  maxLength = 50,
): LengthAveraged {
  const byLength = new Map<number, number[]>();
  for (const s of sentences) {
    const list = byLength.get(s.n) ?? [];
    for (let i = 0; i < s.n; i++) {
      const p = Array.prototype.slice.call(s.predicted, i * s.n, (i + 1) * s.n) as number[];
      const g = Array.prototype.slice.call(s.gold, i * s.n, (i + 1) * s.n) as number[];
      list.push(spearman(p, g));
    }
    byLength.set(s.n, list);
  }
  return lengthAveraged(byLength, minLength, maxLength);
}

/**
 * NSpr.: Spearman between predicted and gold depths of all words of a sentence, averaged within
 * each sentence length, then over lengths 5–50.
 */
export function depthSpearman(
  sentences: readonly { predicted: ArrayLike<number>; gold: ArrayLike<number> }[],
  minLength = 5,
  maxLength = 50,
): LengthAveraged {
  const byLength = new Map<number, number[]>();
  for (const s of sentences) {
    const n = s.gold.length;
    const list = byLength.get(n) ?? [];
    list.push(spearman(s.predicted, s.gold));
    byLength.set(n, list);
  }
  return lengthAveraged(byLength, minLength, maxLength);
}

/**
 * The predicted root: the non-punctuation word with the smallest predicted depth, first index
 * on ties (reporter.py get_nopunct_argmin; all-punctuation sentences fall back to the plain
 * argmin).
 */
export function predictedRoot(depths: ArrayLike<number>, exclude?: readonly boolean[]): number {
  let best = -1;
  for (let pass = 0; pass < 2 && best < 0; pass++) {
    for (let i = 0; i < depths.length; i++) {
      if (pass === 0 && exclude?.[i]) continue;
      if (best < 0 || depths[i]! < depths[best]!) best = i;
    }
  }
  return best;
}

/**
 * Root accuracy: the fraction of sentences whose predicted root (predictedRoot) is the gold
 * root (the word whose head is 0), over all sentences (reporter.py report_root_acc).
 */
export function rootAccuracy(sentences: readonly { goldRoot: number; predictedRoot: number }[]): number {
  if (sentences.length === 0) return NaN;
  let ok = 0;
  for (const s of sentences) if (s.goldRoot === s.predictedRoot) ok++;
  return ok / sentences.length;
}
