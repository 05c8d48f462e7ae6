/**
 * One pass of `bert-probe heads` over a split: Clark et al. 2019's surface statistics (piece
 * level), head accuracy per relation in both directions with the offset baseline, and the
 * Jensen–Shannon distances between heads with their MDS embedding. Pure computation over an
 * attention reader; the family (src/probes/heads.ts) turns the result into rows and figures.
 */
import type { Sentence } from '../corpus/types.js';
import { wordAttention, type FromPieces } from '../extract/align.js';
import type { ArrayTensor } from '../model/types.js';
import { RuntimeFailure } from '../util/errors.js';
import { mulberry32, shuffled } from '../util/random.js';
import { SurfaceAccumulator, type HeadSurfaceStats } from './attention-stats.js';
import { attentionHeadPredictions, BASELINE_OFFSETS, DIRECTIONS, offsetPredictions, RelationCounts, type Direction } from './head-accuracy.js';
import { classicalMds, HeadDivergence } from './head-distances.js';

/** What the pass reads: an ActivationSource (src/extract/request.ts), raw attention optional. */
export interface AttentionReader {
  readonly numHeads: number;
  readonly attentionLayers: readonly number[];
  readonly rawAttentionLayers?: readonly number[];
  hasAttention(sentence: number): boolean;
  readAttention(layer: number, sentence: number): Promise<ArrayTensor>;
  readRawAttention?(layer: number, sentence: number): Promise<ArrayTensor>;
}

/** Piece strings and word spans of a sentence (the model's tokenizer, src/model/types.ts). */
export interface PieceTokenizer {
  encodeWords(words: readonly string[]): { tokens: string[]; wordSpans: [number, number][] };
}

export interface HeadsPassOptions {
  layers: readonly number[];
  fromPieces: FromPieces;
  /** Sentences (a seeded sample) whose attention enters the head distances; 0 for none. */
  distanceSentences: number;
  seed: number;
  onSentence?: (done: number, total: number) => void;
}

export interface HeadsPass {
  /** 'piece' when the reader had raw attention (Clark's level), else 'word' (stats not computed). */
  level: 'piece' | 'word';
  surface: HeadSurfaceStats[] | null;
  counts: RelationCounts;
  /** Predictor index → what it is. */
  predictors: { layer: number | null; head: number | null; direction: Direction | null; offset: number | null }[];
  /** Per scored sentence: its index, and the [predictors, n] predictions (Int16). */
  predictions: { sentence: number; preds: Int16Array }[];
  distances: { matrix: Float64Array; points: number[][]; sentences: number; level: 'piece' | 'word' } | null;
  skipped: { noAttention: number; mismatch: number };
  sentencesScored: number;
}

const headPredictor = (li: number, h: number, d: number, H: number): number => (li * H + h) * 2 + d;

export async function headsPass(sentences: readonly Sentence[], reader: AttentionReader, tokenizer: PieceTokenizer, o: HeadsPassOptions): Promise<HeadsPass> {
  const H = reader.numHeads;
  const L = o.layers.length;
  for (const l of o.layers) {
    if (!reader.attentionLayers.includes(l) && !(reader.rawAttentionLayers ?? []).includes(l)) {
      throw new RuntimeFailure(`the activations have no attention for layer ${l}; extract with --attention (and --raw-attention for the piece-level statistics)`);
    }
  }
  const raw = !!reader.readRawAttention && o.layers.every((l) => (reader.rawAttentionLayers ?? []).includes(l));
  if (!raw && o.fromPieces !== 'mean') {
    throw new RuntimeFailure(`--from-pieces ${o.fromPieces} needs piece-level (raw) attention, and these activations hold only word-level attention (mean over pieces); extract with --raw-attention`);
  }
  const predictors: HeadsPass['predictors'] = [];
  o.layers.forEach((l) => {
    for (let h = 0; h < H; h++) for (const d of DIRECTIONS) predictors.push({ layer: l, head: h + 1, direction: d, offset: null });
  });
  for (const k of BASELINE_OFFSETS) predictors.push({ layer: null, head: null, direction: null, offset: k });
  const P = predictors.length;
  const counts = new RelationCounts(P);
  const surface = raw ? o.layers.map(() => new SurfaceAccumulator(H)) : null;
  const usable = sentences.map((_, i) => i).filter((i) => reader.hasAttention(i));
  const distanceSet = new Set(o.distanceSentences > 0 ? shuffled(usable, mulberry32(o.seed)).slice(0, o.distanceSentences) : []);
  const divergence = distanceSet.size ? new HeadDivergence(L * H) : null;
  const predictions: HeadsPass['predictions'] = [];
  const skipped = { noAttention: sentences.length - usable.length, mismatch: 0 };

  let done = 0;
  for (const s of usable) {
    const sent = sentences[s]!;
    const n = sent.words.length;
    const G = n + 2;
    const enc = tokenizer.encodeWords(sent.words);
    const preds = new Int16Array(P * n);
    const pieceMaps: Float32Array[] = [];
    const wordMaps: Float32Array[] = [];
    let ok = true;
    for (let li = 0; li < L && ok; li++) {
      const l = o.layers[li]!;
      let word: Float32Array;
      if (raw) {
        const t = await reader.readRawAttention!(l, s);
        const np = t.shape[1]!;
        if (np !== enc.tokens.length) {
          ok = false;
          break;
        }
        surface![li]!.add(t.data, enc.tokens);
        word = wordAttention(t.data, H, np, enc.wordSpans, o.fromPieces);
        if (divergence && distanceSet.has(s)) pieceMaps.push(t.data);
      } else {
        const t = await reader.readAttention(l, s);
        if (t.shape[1] !== G) {
          ok = false;
          break;
        }
        word = t.data;
        if (divergence && distanceSet.has(s)) wordMaps.push(t.data);
      }
      for (let h = 0; h < H; h++) {
        DIRECTIONS.forEach((d, di) => preds.set(attentionHeadPredictions(word, n, d, h * G * G), headPredictor(li, h, di, H) * n));
      }
    }
    if (!ok) {
      skipped.mismatch++;
      continue;
    }
    BASELINE_OFFSETS.forEach((k, ki) => preds.set(offsetPredictions(n, k), (2 * L * H + ki) * n));
    counts.add(sent.words, sent.heads!, sent.deprels!, (p) => preds.subarray(p * n, (p + 1) * n));
    predictions.push({ sentence: s, preds });
    if (divergence && distanceSet.has(s)) {
      const maps = raw ? pieceMaps : wordMaps;
      const size = raw ? enc.tokens.length : G;
      const perHead: Float32Array[] = [];
      for (const m of maps) for (let h = 0; h < H; h++) perHead.push(m.subarray(h * size * size, (h + 1) * size * size));
      divergence.add(perHead, size);
    }
    o.onSentence?.(++done, usable.length);
  }
  let distances: HeadsPass['distances'] = null;
  if (divergence && divergence.sentences > 0) {
    const matrix = divergence.result();
    distances = { matrix, points: classicalMds(matrix, L * H), sentences: divergence.sentences, level: raw ? 'piece' : 'word' };
  }
  return {
    level: raw ? 'piece' : 'word',
    surface: surface ? surface.map((a) => a.result()) : null,
    counts,
    predictors,
    predictions,
    distances,
    skipped,
    sentencesScored: predictions.length,
  };
}

/** The best predictor among heads × directions, and the best offset, for one relation. */
export function bestForRelation(pass: HeadsPass, rel: string): { head: number; offset: number } {
  let head = -1;
  let offset = -1;
  pass.predictors.forEach((p, i) => {
    const a = pass.counts.accuracy(rel, i);
    if (p.offset === null) {
      if (head < 0 || a > pass.counts.accuracy(rel, head)) head = i;
    } else if (offset < 0 || a > pass.counts.accuracy(rel, offset)) offset = i;
  });
  return { head, offset };
}
