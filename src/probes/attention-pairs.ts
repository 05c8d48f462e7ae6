/**
 * The "model-wide attention vector" of a word pair: Coenen, Reif, Yuan et al. 2019,
 * "Visualizing and Measuring the Geometry of BERT", §2 (attention probe). For an ordered word
 * pair (i, j) it is the word-level attention i→j in every head of every layer (L × H values,
 * 144 for BERT-base); with `symmetric` the attention j→i follows (2·L·H). No code was released
 * (REFERENCES.md §4.1), so every choice below is ours and is written into the manifest:
 *   - one positive example per dependency arc: the ordered pair (dependent, head); arcs to ROOT
 *     have no pair and are left out; punctuation arcs are kept;
 *   - negatives: ordered pairs (i, j), i ≠ j, of the same sentence with no arc between i and j in
 *     either direction, `negatives` per arc of that sentence, drawn without replacement with a
 *     seeded generator (all of them when the sentence has fewer);
 *   - word-level attention is Clark et al.'s conversion (src/extract/align.ts).
 */

export interface WordPair {
  sentence: number;
  /** 0-based word indices: the attention i→j is the first block of features. */
  i: number;
  j: number;
  arc: boolean;
  /** The arc's relation (dependent i, head j); null for a negative. */
  rel: string | null;
}

/**
 * The pairs of one sentence: its arcs, then its sampled negatives.
 * @param heads 1-based heads, 0 = root
 */
export function samplePairs(sentence: number, heads: readonly number[], rels: readonly string[], negatives: number, rand: () => number): WordPair[] {
  const n = heads.length;
  const linked = new Set<number>();
  const out: WordPair[] = [];
  for (let d = 0; d < n; d++) {
    const h = heads[d]!;
    if (h === 0) continue;
    out.push({ sentence, i: d, j: h - 1, arc: true, rel: rels[d]! });
    linked.add(d * n + (h - 1));
    linked.add((h - 1) * n + d);
  }
  const want = Math.round(negatives * out.length);
  if (want <= 0) return out;
  const candidates: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && !linked.has(i * n + j)) candidates.push(i * n + j);
  // Partial Fisher–Yates: the first `want` of a seeded shuffle.
  const take = Math.min(want, candidates.length);
  for (let k = 0; k < take; k++) {
    const r = k + Math.floor(rand() * (candidates.length - k));
    [candidates[k], candidates[r]] = [candidates[r]!, candidates[k]!];
    out.push({ sentence, i: Math.floor(candidates[k]! / n), j: candidates[k]! % n, arc: false, rel: null });
  }
  return out;
}

/** Number of features per pair. */
export const pairFeatureCount = (layers: number, heads: number, symmetric: boolean): number => layers * heads * (symmetric ? 2 : 1);

/** Feature index of (layer position k in the list of layers, head h 0-based, reverse = the j→i block). */
export const pairFeatureIndex = (k: number, h: number, heads: number, layers: number, reverse = false): number => (reverse ? layers * heads : 0) + k * heads + h;

/**
 * Write the attention vectors of one sentence's pairs.
 * @param maps   per layer (in order), the word-level attention [heads, n+2, n+2] ([CLS] at 0)
 * @param out    receives pairs.length × pairFeatureCount values from `offset`
 */
export function pairFeatures(maps: readonly ArrayLike<number>[], heads: number, n: number, pairs: readonly WordPair[], symmetric: boolean, out: Float32Array, offset = 0): void {
  const G = n + 2;
  const L = maps.length;
  const F = pairFeatureCount(L, heads, symmetric);
  pairs.forEach((p, k) => {
    const dst = offset + k * F;
    for (let l = 0; l < L; l++) {
      const m = maps[l]!;
      for (let h = 0; h < heads; h++) {
        out[dst + pairFeatureIndex(l, h, heads, L)] = m[h * G * G + (p.i + 1) * G + (p.j + 1)]!;
        if (symmetric) out[dst + pairFeatureIndex(l, h, heads, L, true)] = m[h * G * G + (p.j + 1) * G + (p.i + 1)]!;
      }
    }
  });
}
