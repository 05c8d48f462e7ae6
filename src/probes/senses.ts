/**
 * Word senses in contextual vectors (Coenen, Reif, Yuan et al. 2019, "Visualizing and Measuring
 * the Geometry of BERT"; REFERENCES.md §4.2–4.3):
 * - occurrences: every sentence containing the word (SemCor: a word whose sense lemma is the
 *   word; otherwise the lower-cased form), the first occurrence per sentence only, as the
 *   context atlas does (PAIR context-atlas README);
 * - the vector of an occurrence at a layer: its first word piece (context-atlas preprocess.py
 *   lines 94-100), or the mean of its pieces with pooling 'mean';
 * - per layer: PCA and UMAP to 2-D (umap-js with default parameters as the atlas, seeded;
 *   nNeighbors capped at n − 1 for small sets), k-means (ml-kmeans, k-means++ seeded) with
 *   purity and adjusted Rand index against gold senses (cluster-metrics.ts);
 * - WSD: nearest sense centroid (cosine) of training-document occurrences, per layer (§4.2; the
 *   paper's distance and layer are UNVERIFIED, our choices are written in the manifest).
 */
import { kmeans } from 'ml-kmeans';
import { PCA } from 'ml-pca';
import { UMAP } from 'umap-js';
import type { Sentence, WordSense } from '../corpus/types.js';
import { poolWords, type Pooling } from '../extract/align.js';
import { forwardSentences } from '../extract/forward.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { mulberry32 } from '../util/random.js';
import { adjustedRandIndex, purity } from './cluster-metrics.js';

export interface Occurrence {
  sentence: number;
  word: number;
  /** Gold sense key (`lemma%lexsn` where SemCor gives lexsn, else `lemma#wnsn`), or null. */
  sense: string | null;
}

/** The WordNet sense key SemCor gives: lemma%lexsn (lexsn = ss_type:lex_filenum:lex_id:head_word:head_id). */
export function senseKey(s: WordSense): string {
  return s.lexsn ? `${s.lemma.toLowerCase()}%${s.lexsn}` : `${s.lemma.toLowerCase()}#${s.wnsn}`;
}

/** First occurrence of `word` in each sentence (by sense lemma where tagged, else by form). */
export function findOccurrences(sentences: readonly Sentence[], word: string): Occurrence[] {
  const w = word.toLowerCase();
  const out: Occurrence[] = [];
  sentences.forEach((s, si) => {
    for (let i = 0; i < s.words.length; i++) {
      const sense = s.senses?.[i] ?? null;
      const hit = sense ? sense.lemma.toLowerCase() === w : s.words[i]!.toLowerCase() === w;
      if (hit) {
        out.push({ sentence: si, word: i, sense: sense ? senseKey(sense) : null });
        break;
      }
    }
  });
  return out;
}

/**
 * Contextual vectors of word occurrences: layer → [occurrences, hidden], in the order given.
 * Runs only the sentences that hold an occurrence.
 */
export async function occurrenceVectors(
  engine: Engine,
  model: LoadedModel,
  sentences: readonly Sentence[],
  occurrences: readonly { sentence: number; word: number }[],
  opts: { layers: readonly number[]; pooling: Pooling; batchSize: number; onSentence?: () => void },
): Promise<Map<number, Float32Array>> {
  const H = model.config.hiddenSize;
  const wanted = [...new Set(occurrences.map((o) => o.sentence))];
  const encodings = wanted.map((si) => model.tokenizer.encodeWords(sentences[si]!.words));
  const bySentence = new Map<number, number[]>();
  occurrences.forEach((o, k) => bySentence.set(o.sentence, [...(bySentence.get(o.sentence) ?? []), k]));
  const out = new Map(opts.layers.map((l) => [l, new Float32Array(occurrences.length * H)] as const));
  await forwardSentences(engine, encodings, {
    hiddenStates: opts.layers,
    attentions: [],
    batchSize: opts.batchSize,
    padId: model.tokenizer.padId,
    maxPositions: model.config.maxPositionEmbeddings,
    onSentence: (r) => {
      const si = wanted[r.index]!;
      const enc = encodings[r.index]!;
      for (const k of bySentence.get(si)!) {
        const span = enc.wordSpans[occurrences[k]!.word]!;
        for (const l of opts.layers) poolWords(r.states.get(l)!, H, [span], opts.pooling, out.get(l)!.subarray(k * H, (k + 1) * H));
      }
      opts.onSentence?.();
    },
  });
  return out;
}

const rowsOf = (m: Float32Array, n: number, d: number): number[][] => Array.from({ length: n }, (_, i) => Array.from(m.subarray(i * d, (i + 1) * d)));

export interface LayerGeometry {
  pca: number[][];
  /** Fraction of variance each of the two PCA components explains. */
  pcaExplained: [number, number];
  umap: number[][] | null;
  clusters: number[];
  k: number;
  purity: number | null;
  ari: number | null;
}

/** PCA, UMAP and k-means of one layer's occurrence vectors, with purity and ARI on the labelled ones. */
export function layerGeometry(vectors: Float32Array, n: number, d: number, senses: readonly (string | null)[], opts: { k: number; seed: number }): LayerGeometry {
  const X = rowsOf(vectors, n, d);
  const pca = new PCA(X, { center: true, scale: false });
  const proj = pca.predict(X, { nComponents: Math.min(2, d) }).to2DArray();
  const ev = pca.getExplainedVariance();
  // UMAP needs a neighbourhood; with ≤ 2 points there is nothing to embed.
  const umap = n > 2 ? new UMAP({ nComponents: 2, nNeighbors: Math.min(15, n - 1), random: mulberry32(opts.seed) }).fit(X) : null;
  const k = Math.max(1, Math.min(opts.k, n));
  const clusters = kmeans(X, k, { seed: opts.seed, initialization: 'kmeans++' }).clusters;
  const labelled = senses.map((s, i) => (s === null ? -1 : i)).filter((i) => i >= 0);
  const gold = labelled.map((i) => senses[i]!);
  const pred = labelled.map((i) => clusters[i]!);
  return {
    pca: proj.map((r) => [r[0] ?? 0, r[1] ?? 0]),
    pcaExplained: [ev[0] ?? 0, ev[1] ?? 0],
    umap,
    clusters,
    k,
    purity: labelled.length ? purity(pred, gold) : null,
    ari: labelled.length ? adjustedRandIndex(pred, gold) : null,
  };
}

/**
 * Nearest-centroid word-sense disambiguation. Centroids: the mean vector of each (lemma, sense)
 * over training occurrences; a test occurrence gets the sense of the lemma whose centroid is
 * most cosine-similar (ties: the sense seen first in training). Lemmas never seen in training
 * are not attempted. Scored as in Raganato et al. 2017's framework: P = correct / attempted,
 * R = correct / all, F1 = 2PR / (P + R). Baseline: the lemma's most frequent training sense.
 */
export class SenseCentroids {
  private readonly sums = new Map<string, Map<string, { sum: Float64Array; count: number }>>();
  constructor(readonly dim: number) {}

  add(lemma: string, sense: string, v: Float32Array): void {
    let bySense = this.sums.get(lemma);
    if (!bySense) this.sums.set(lemma, (bySense = new Map()));
    let c = bySense.get(sense);
    if (!c) bySense.set(sense, (c = { sum: new Float64Array(this.dim), count: 0 }));
    for (let i = 0; i < this.dim; i++) c.sum[i] += v[i]!;
    c.count++;
  }

  has(lemma: string): boolean {
    return this.sums.has(lemma);
  }

  /** The nearest sense by cosine to the centroid (mean direction), or null for an unseen lemma. */
  predict(lemma: string, v: Float32Array): string | null {
    const bySense = this.sums.get(lemma);
    if (!bySense) return null;
    let best: string | null = null;
    let bestScore = -Infinity;
    let vn = 0;
    for (let i = 0; i < this.dim; i++) vn += v[i]! * v[i]!;
    for (const [sense, c] of bySense) {
      let dot = 0;
      let cn = 0;
      for (let i = 0; i < this.dim; i++) {
        dot += c.sum[i]! * v[i]!;
        cn += c.sum[i]! * c.sum[i]!;
      }
      const score = cn > 0 && vn > 0 ? dot / Math.sqrt(cn * vn) : -Infinity;
      if (score > bestScore) {
        bestScore = score;
        best = sense;
      }
    }
    return best;
  }

  /** The most frequent training sense of a lemma (ties: the first seen). */
  mostFrequent(lemma: string): string | null {
    const bySense = this.sums.get(lemma);
    if (!bySense) return null;
    let best: string | null = null;
    let n = -1;
    for (const [sense, c] of bySense) if (c.count > n) [best, n] = [sense, c.count];
    return best;
  }
}

export function wsdScores(results: readonly { gold: string; predicted: string | null }[]): { precision: number | null; recall: number | null; f1: number | null; attempted: number; correct: number; total: number } {
  const attempted = results.filter((r) => r.predicted !== null).length;
  const correct = results.filter((r) => r.predicted === r.gold).length;
  const total = results.length;
  const precision = attempted ? correct / attempted : null;
  const recall = total ? correct / total : null;
  const f1 = precision !== null && recall !== null && precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : precision !== null && recall !== null ? 0 : null;
  return { precision, recall, f1, attempted, correct, total };
}

/** Document of a SemCor sentence id (`br-a01#12` → `br-a01`). */
export const documentOf = (s: Sentence): string => s.id.split('#')[0] ?? s.id;
