/**
 * One structural-probe run over layers: read a layer's word vectors from the activation stores,
 * train the distance and/or depth probe on train (epoch chosen on dev), predict on test, score,
 * and return the results rows and predictions.jsonl records. The CLI (src/cli/structural.ts)
 * loads the model, corpus and stores and hands them here.
 */
import type { Sentence } from '../corpus/types.js';
import { RuntimeFailure } from '../util/errors.js';
import { layerName } from '../util/names.js';
import type { Ui } from '../util/ui.js';
import { fitStructuralProbe, type ProbeExample, type StructuralKind } from './structural.js';
import { predictionRecords, scoreSplit, type GoldSentence, type PredictionRecord, type StructuralScores } from './structural-eval.js';
import type { Tf } from './trainer.js';
import { chainDepths, chainDistances, treeDepths, treeDistances } from './trees.js';

/** What the run needs of an activation store (src/extract/store.ts ActivationStore). */
export interface LayerSource {
  readonly numSentences: number;
  readonly hiddenSize: number;
  readonly wordCounts: number[];
  readLayer(layer: number): Promise<{ vectors: Float32Array; sentenceOffsets: Int32Array }>;
}

export const RESULT_COLUMNS = ['model', 'layer', 'probe', 'uuas', 'dspr', 'root_acc', 'nspr', 'sentences', 'epochs', 'best_dev_loss', 'seconds'] as const;

export const COLUMN_DESCRIPTIONS: Record<string, string> = {
  model: 'model id (random-init controls are labelled); "baseline" for the linear baseline',
  layer: 'hidden state probed: layer.0 = embeddings, layer.N = after transformer layer N; "linear" = the linear baseline',
  probe: 'distance (‖B(h_i−h_j)‖² vs tree distance) or depth (‖Bh_i‖² vs tree depth)',
  uuas: 'undirected unlabeled attachment score of the MST over predicted distances, punctuation excluded (test)',
  dspr: 'Spearman of predicted vs gold distances per word, averaged within sentence length, then over lengths 5–50 (test)',
  root_acc: 'fraction of test sentences whose smallest predicted depth (punctuation excluded) is the gold root',
  nspr: 'Spearman of predicted vs gold depths per sentence, averaged within length, then over lengths 5–50 (test)',
  sentences: 'test sentences scored',
  epochs: 'training epochs run (early stopping on dev loss)',
  best_dev_loss: 'dev L1 loss of the kept parameters (per sentence, normalised by length² or length)',
  seconds: 'training and scoring time of this probe',
};

export type ResultRow = Record<(typeof RESULT_COLUMNS)[number], string | number | null>;

export interface StructuralSplits {
  train: Sentence[];
  dev: Sentence[];
  test: Sentence[];
}

export interface RunLayerOptions {
  tf: Tf;
  kinds: StructuralKind[];
  rank?: number;
  seed: number;
  maxEpochs?: number;
  batchSize?: number;
  saveDistances: boolean;
  /** The model label written in rows and records. */
  model: string;
  ui: Ui;
}


function examples(sentences: readonly Sentence[], vectors: Float32Array, offsets: Int32Array, hidden: number, kind: StructuralKind | null): ProbeExample[] {
  return sentences.map((s, k) => {
    const n = s.words.length;
    if (offsets[k + 1]! - offsets[k]! !== n) {
      throw new RuntimeFailure(`activation store and corpus disagree on sentence ${k} (${s.id}): ${offsets[k + 1]! - offsets[k]!} vectors for ${n} words`);
    }
    const ex: ProbeExample = { n, vectors: vectors.subarray(offsets[k]! * hidden, offsets[k + 1]! * hidden) };
    if (kind === 'distance') ex.distances = treeDistances(s.heads!);
    if (kind === 'depth') ex.depths = treeDepths(s.heads!);
    return ex;
  });
}

/** Train, select and score the probes of one layer. */
export async function runLayer(
  stores: { train: LayerSource; dev: LayerSource; test: LayerSource },
  splits: StructuralSplits,
  gold: readonly GoldSentence[],
  layer: number,
  opts: RunLayerOptions,
): Promise<{ rows: ResultRow[]; records: PredictionRecord[]; scores: StructuralScores }> {
  const hidden = stores.train.hiddenSize;
  const [tr, dv, te] = await Promise.all([stores.train.readLayer(layer), stores.dev.readLayer(layer), stores.test.readLayer(layer)]);
  const testEx = examples(splits.test, te.vectors, te.sentenceOffsets, hidden, null);
  const rows: ResultRow[] = [];
  const distances: Float64Array[] = [];
  const depths: Float64Array[] = [];
  const seconds: Record<string, number> = {};
  for (const kind of opts.kinds) {
    const t0 = performance.now();
    const fit = fitStructuralProbe(
      opts.tf,
      examples(splits.train, tr.vectors, tr.sentenceOffsets, hidden, kind),
      examples(splits.dev, dv.vectors, dv.sentenceOffsets, hidden, kind),
      {
        kind,
        hiddenSize: hidden,
        ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
        seed: opts.seed,
        ...(opts.maxEpochs !== undefined ? { maxEpochs: opts.maxEpochs } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
        onEpoch: (e) => opts.ui.debug(`${opts.model} ${layerName(layer)} ${kind}: epoch ${e.epoch + 1} train ${e.trainLoss.toFixed(4)} dev ${e.devLoss.toFixed(4)} lr ${e.learningRate}`),
      },
    );
    try {
      for (const ex of testEx) (kind === 'distance' ? distances : depths).push(kind === 'distance' ? fit.probe.distances(ex.vectors, ex.n) : fit.probe.depths(ex.vectors, ex.n));
    } finally {
      fit.probe.dispose();
    }
    seconds[kind] = (performance.now() - t0) / 1000;
    rows.push({
      model: opts.model,
      layer: layerName(layer),
      probe: kind,
      uuas: null,
      dspr: null,
      root_acc: null,
      nspr: null,
      sentences: gold.length,
      epochs: fit.epochs,
      best_dev_loss: fit.bestDevLoss,
      seconds: Math.round(seconds[kind]! * 1000) / 1000,
    });
    // On a TTY the progress bar shows this; elsewhere (logs, CI) one line per probe.
    (opts.ui.tty ? opts.ui.debug : opts.ui.info).call(opts.ui, `${opts.model} ${layerName(layer)} ${kind} probe: ${fit.epochs} epochs, dev loss ${fit.bestDevLoss.toFixed(4)} (${seconds[kind]!.toFixed(1)} s)`);
  }
  const { scores, predictions } = scoreSplit(gold, distances.length ? distances : undefined, depths.length ? depths : undefined);
  fillScores(rows, scores);
  return { rows, records: predictionRecords(opts.model, layerName(layer), gold, predictions, opts.saveDistances), scores };
}

function fillScores(rows: ResultRow[], scores: StructuralScores): void {
  for (const row of rows) {
    if (row.probe === 'distance') {
      row.uuas = scores.uuas;
      row.dspr = scores.dspr;
    } else {
      row.root_acc = scores.rootAcc;
      row.nspr = scores.nspr;
    }
  }
}

/**
 * The linear baseline of Hewitt & Manning (§4): words as a chain in sentence order, distance
 * |i − j| and depth = word index. No training.
 */
export function linearBaseline(gold: readonly GoldSentence[], kinds: StructuralKind[], saveDistances: boolean): { rows: ResultRow[]; records: PredictionRecord[]; scores: StructuralScores } {
  const t0 = performance.now();
  const dist = kinds.includes('distance') ? gold.map((g) => chainDistances(g.words.length)) : undefined;
  const dep = kinds.includes('depth') ? gold.map((g) => chainDepths(g.words.length)) : undefined;
  const { scores, predictions } = scoreSplit(gold, dist, dep);
  const secs = Math.round(performance.now() - t0) / 1000;
  const rows: ResultRow[] = kinds.map((probe) => ({
    model: 'baseline',
    layer: 'linear',
    probe,
    uuas: null,
    dspr: null,
    root_acc: null,
    nspr: null,
    sentences: gold.length,
    epochs: 0,
    best_dev_loss: null,
    seconds: secs,
  }));
  fillScores(rows, scores);
  return { rows, records: predictionRecords('baseline', 'linear', gold, predictions, saveDistances), scores };
}
