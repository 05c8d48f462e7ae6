/**
 * Scoring the structural probe on a split and writing what it predicted, so that every reported
 * number can be recomputed from predictions.jsonl alone (issue 6): gold trees come from the
 * heads and POS tags written there, predicted trees from the MST edges, depths as written, and
 * distance correlations from the distance matrix (written with --save-distances).
 */
import type { Sentence } from '../corpus/types.js';
import {
  distanceSpearman,
  depthSpearman,
  mstEdges,
  predictedRoot,
  punctMask,
  rootAccuracy,
  uuas,
} from './metrics.js';
import { treeDepths, treeDistances, type Edge } from './trees.js';

/** A test sentence with its gold targets. */
export interface GoldSentence {
  id: string;
  words: string[];
  heads: number[];
  xpos?: string[];
  upos?: string[];
  punct: boolean[];
  distances: Float32Array;
  depths: Float32Array;
  /** Gold undirected edges between non-punctuation words (MST of the gold distances, as reporter.py). */
  goldEdges: Edge[];
  /** 0-based index of the word whose head is 0. */
  root: number;
}

export function goldSentence(s: Sentence): GoldSentence {
  const heads = s.heads!;
  const n = s.words.length;
  const punct = punctMask(n, s.xpos, s.upos);
  const distances = treeDistances(heads);
  return {
    id: s.id,
    words: s.words,
    heads,
    ...(s.xpos ? { xpos: s.xpos } : {}),
    ...(s.upos ? { upos: s.upos } : {}),
    punct,
    distances,
    depths: treeDepths(heads),
    goldEdges: mstEdges(distances, n, punct),
    root: heads.indexOf(0),
  };
}

export interface StructuralScores {
  uuas: number | null;
  dspr: number | null;
  rootAcc: number | null;
  nspr: number | null;
}

export interface SentencePrediction {
  /** Predicted MST edges [i, j] (i < j) over non-punctuation words (distance probe). */
  edges?: Edge[];
  /** Predicted squared distances, n×n row-major (distance probe). */
  distances?: ArrayLike<number>;
  /** Predicted depths (depth probe). */
  depths?: ArrayLike<number>;
  /** Index of the predicted root (depth probe). */
  root?: number;
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Edges, root and metrics from raw predicted distances and/or depths. */
export function scoreSplit(
  gold: readonly GoldSentence[],
  distances: readonly (ArrayLike<number> | undefined)[] | undefined,
  depths: readonly (ArrayLike<number> | undefined)[] | undefined,
): { scores: StructuralScores; predictions: SentencePrediction[] } {
  const predictions: SentencePrediction[] = gold.map((g, k) => {
    const p: SentencePrediction = {};
    const d = distances?.[k];
    if (d) {
      p.distances = d;
      p.edges = mstEdges(d, g.words.length, g.punct);
    }
    const z = depths?.[k];
    if (z) {
      p.depths = z;
      p.root = predictedRoot(z, g.punct);
    }
    return p;
  });
  return { scores: scoreFromPredictions(gold, predictions), predictions };
}

/**
 * The four metrics from predicted edges, distances, depths and roots. DSpr needs the distance
 * matrices; without them it is null.
 */
export function scoreFromPredictions(gold: readonly GoldSentence[], predictions: readonly SentencePrediction[]): StructuralScores {
  const hasEdges = predictions.length > 0 && predictions.every((p) => p.edges);
  const hasDist = predictions.length > 0 && predictions.every((p) => p.distances);
  const hasDepths = predictions.length > 0 && predictions.every((p) => p.depths);
  return {
    uuas: hasEdges ? finiteOrNull(uuas(gold.map((g, k) => ({ gold: g.goldEdges, predicted: predictions[k]!.edges! })))) : null,
    dspr: hasDist
      ? finiteOrNull(distanceSpearman(gold.map((g, k) => ({ n: g.words.length, predicted: predictions[k]!.distances!, gold: g.distances }))).value)
      : null,
    rootAcc: hasDepths ? finiteOrNull(rootAccuracy(gold.map((g, k) => ({ goldRoot: g.root, predictedRoot: predictions[k]!.root ?? predictedRoot(predictions[k]!.depths!, g.punct) })))) : null,
    nspr: hasDepths ? finiteOrNull(depthSpearman(gold.map((g, k) => ({ predicted: predictions[k]!.depths!, gold: g.depths }))).value) : null,
  };
}

/** One line of predictions.jsonl: a test sentence under one model and layer. */
export interface PredictionRecord {
  model: string;
  /** `layer.N`, or `linear` for the linear baseline. */
  layer: string;
  /** 0-based index in the test split. */
  sentence: number;
  id: string;
  words: string[];
  /** Gold heads, 1-based, 0 = root (CoNLL). */
  heads: number[];
  xpos?: string[];
  upos?: string[];
  /** Words left out of UUAS and root accuracy (gold POS punctuation). */
  punct: boolean[];
  /** Predicted MST edges, 0-based [i, j]. */
  predicted_edges?: Edge[];
  predicted_depths?: number[];
  predicted_root?: number;
  /** Predicted squared distances, one row per word (with --save-distances). */
  predicted_distances?: number[][];
}

export function predictionRecords(
  model: string,
  layer: string,
  gold: readonly GoldSentence[],
  predictions: readonly SentencePrediction[],
  saveDistances: boolean,
): PredictionRecord[] {
  return gold.map((g, k) => {
    const p = predictions[k]!;
    const n = g.words.length;
    const rec: PredictionRecord = {
      model,
      layer,
      sentence: k,
      id: g.id,
      words: g.words,
      heads: g.heads,
      ...(g.xpos ? { xpos: g.xpos } : {}),
      ...(g.upos ? { upos: g.upos } : {}),
      punct: g.punct,
    };
    if (p.edges) rec.predicted_edges = p.edges;
    if (p.depths) rec.predicted_depths = Array.from(p.depths);
    if (p.root !== undefined) rec.predicted_root = p.root;
    if (saveDistances && p.distances) {
      const d = p.distances;
      rec.predicted_distances = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => d[i * n + j]!));
    }
    return rec;
  });
}

/**
 * Recompute the metrics of one (model, layer) from its predictions.jsonl records, using only
 * what the file holds (gold heads and POS-based punctuation, predicted edges, depths, and
 * distances when saved).
 */
export function scoreRecords(records: readonly PredictionRecord[]): StructuralScores {
  const gold = records.map((r) =>
    goldSentence({ id: r.id, source: { file: '', line: 0 }, words: r.words, heads: r.heads, xpos: r.xpos, upos: r.upos }),
  );
  const preds: SentencePrediction[] = records.map((r) => ({
    ...(r.predicted_edges ? { edges: r.predicted_edges } : {}),
    ...(r.predicted_distances ? { distances: r.predicted_distances.flat() } : {}),
    ...(r.predicted_depths ? { depths: r.predicted_depths } : {}),
    ...(r.predicted_root !== undefined ? { root: r.predicted_root } : {}),
  }));
  return scoreFromPredictions(gold, preds);
}
