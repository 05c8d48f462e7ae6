/**
 * The structural probe (Hewitt & Manning 2019) as a probe family on the runner (issue 9): units
 * are hidden states `layer.N` (layer.0, the embeddings, always included); each unit trains the
 * distance and/or depth probe on train, keeps the best dev epoch, and scores on test (UUAS,
 * DSpr., root accuracy, NSpr.; src/probes/structural-eval.ts). The linear baseline (§4: words as a
 * chain) is the family's baseline. Everything else (model, control, splits, store, seeds,
 * results) is src/probes/runner.ts.
 */
import type { Sentence } from '../corpus/types.js';
import type { BertConfig } from '../model/types.js';
import type { ResultSet } from '../results/resultset.js';
import { dependencyArcs, lineOverLayers } from '../results/figures.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import type { ProbeFamily, RunnerOptions, Unit, UnitContext, UnitResult } from './contract.js';
import { goldSentence, predictionRecords, scoreSplit, type GoldSentence, type PredictionRecord, type StructuralScores } from './structural-eval.js';
import { disposeCompiledStructural, fitStructural, predictStructural, type StructuralKind } from './structural-train.js';
import { chainDepths, chainDistances, treeProblem } from './trees.js';

export interface StructuralOptions extends RunnerOptions {
  layers: string;
  probe: 'distance' | 'depth' | 'both';
  rank?: number;
  saveDistances?: boolean;
  maxEpochs: number;
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

const METRICS = [
  ['uuas', 'distance'],
  ['dspr', 'distance'],
  ['root_acc', 'depth'],
  ['nspr', 'depth'],
] as const;

const METRIC_TITLES: Record<string, string> = { uuas: 'UUAS', dspr: 'DSpr.', root_acc: 'root accuracy', nspr: 'NSpr.' };

/** Epochs a probe typically trains before early stopping (for the run estimate only). */
const TYPICAL_EPOCHS = 20;

/** Reference batch size (structural-probes config: 20 sentences). */
const BATCH_SENTENCES = 20;

export function structuralKinds(opts: Pick<StructuralOptions, 'probe'>): StructuralKind[] {
  return opts.probe === 'both' ? ['distance', 'depth'] : [opts.probe];
}

/** The hidden states probed: --layers, with layer.0 (the embeddings baseline) always added. */
export function structuralLayers(spec: string, config: BertConfig): number[] {
  return [...new Set([0, ...parseLayerSpec(spec, config.numHiddenLayers)])].sort((a, b) => a - b);
}

/** Gold trees of a split, computed once per split (every unit scores against them). */
const goldCache = new WeakMap<readonly Sentence[], GoldSentence[]>();
function goldOf(sentences: readonly Sentence[]): GoldSentence[] {
  let g = goldCache.get(sentences);
  if (!g) goldCache.set(sentences, (g = sentences.map(goldSentence)));
  return g;
}

const rankWarned = new WeakSet<object>();

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

/** Train, select and score the probes of one layer. */
async function runUnit(ctx: UnitContext<StructuralOptions>): Promise<UnitResult> {
  const { opts, unit, splits, ui } = ctx;
  const layer = unit.layers[0]!;
  const kinds = structuralKinds(opts);
  const hidden = splits.train.activations.hiddenSize;
  const rank = opts.rank ?? hidden;
  if (opts.rank !== undefined && opts.rank > hidden && !rankWarned.has(opts)) {
    rankWarned.add(opts);
    ui.warn(`--rank ${opts.rank} is above the hidden size ${hidden}: the extra rows add nothing`);
  }
  const gold = goldOf(splits.test.sentences);
  const device = opts.device;
  const slot = ctx.slot ?? (<T>(train: () => Promise<T>) => train());
  const fits = await Promise.all(
    kinds.map((kind) =>
      slot(() => fitStructural({
        kind,
        layer,
        train: splits.train,
        dev: splits.dev,
        hidden,
        rank,
        seed: ctx.seed,
        maxEpochs: opts.maxEpochs,
        batchSize: BATCH_SENTENCES,
        device,
        threads: ctx.threads,
        onEpoch: (e) => ui.debug(`${ctx.model.label} ${unit.label} ${kind}: epoch ${e.epoch + 1} train ${e.trainLoss.toFixed(4)} dev ${e.devLoss.toFixed(4)} lr ${e.learningRate}`),
      })),
    ),
  );
  const rows: ResultRow[] = [];
  const predicted: Partial<Record<StructuralKind, Float64Array[]>> = {};
  const params: NonNullable<UnitResult['params']> = { names: [], shapes: [], values: [] };
  const training: Record<string, unknown> = {};
  for (const fit of fits) {
    const t0 = performance.now();
    predicted[fit.kind] = await predictStructural(fit.kind, fit.proj, splits.test, layer, hidden, rank, BATCH_SENTENCES, device, ctx.threads);
    const seconds = fit.seconds + (performance.now() - t0) / 1000;
    params.names.push(`${fit.kind}.proj`);
    params.shapes.push([hidden, rank]);
    params.values.push(fit.proj);
    training[fit.kind] = { epochs: fit.epochs, bestEpoch: fit.bestEpoch, bestDevLoss: fit.bestDevLoss, history: fit.history.map((h) => ({ epoch: h.epoch, trainLoss: h.trainLoss, devLoss: h.devLoss, learningRate: h.learningRate })) };
    rows.push({ model: ctx.model.label, layer: unit.label, probe: fit.kind, uuas: null, dspr: null, root_acc: null, nspr: null, sentences: gold.length, epochs: fit.epochs, best_dev_loss: fit.bestDevLoss, seconds: Math.round(seconds * 1000) / 1000 });
    // On a TTY the progress bar shows this; elsewhere (logs, CI) one line per probe.
    (ui.tty ? ui.debug : ui.info).call(ui, `${ctx.model.label} ${unit.label} ${fit.kind} probe: ${fit.epochs} epochs, dev loss ${fit.bestDevLoss.toFixed(4)} (${seconds.toFixed(1)} s)`);
  }
  const { scores, predictions } = scoreSplit(gold, predicted.distance, predicted.depth);
  fillScores(rows, scores);
  return { rows, records: predictionRecords(ctx.model.label, unit.label, gold, predictions, Boolean(opts.saveDistances)) as unknown as Record<string, unknown>[], params, training };
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
  const rows: ResultRow[] = kinds.map((probe) => ({ model: 'baseline', layer: 'linear', probe, uuas: null, dspr: null, root_acc: null, nspr: null, sentences: gold.length, epochs: 0, best_dev_loss: null, seconds: secs }));
  fillScores(rows, scores);
  return { rows, records: predictionRecords('baseline', 'linear', gold, predictions, saveDistances), scores };
}

/** summary.json: best layer per metric for each model, and the baselines' scores. */
export function summarize(rows: readonly Record<string, unknown>[], modelLabel: string, dataId: string, kinds: StructuralKind[]): Record<string, unknown> {
  const models = [...new Set(rows.filter((r) => r.model !== 'baseline').map((r) => String(r.model)))];
  const best: Record<string, Record<string, { layer: string; value: number } | null>> = {};
  for (const m of models) {
    best[m] = {};
    for (const [metric, probe] of METRICS) {
      if (!kinds.includes(probe)) continue;
      let top: { layer: string; value: number } | null = null;
      for (const r of rows) {
        const v = r[metric];
        if (r.model !== m || r.probe !== probe || typeof v !== 'number') continue;
        if (!top || v > top.value) top = { layer: String(r.layer), value: v };
      }
      best[m]![metric] = top;
    }
  }
  const baseline: Record<string, number | null> = {};
  for (const [metric, probe] of METRICS) {
    const r = rows.find((x) => x.model === 'baseline' && x.probe === probe);
    if (r) baseline[metric] = r[metric] as number | null;
  }
  const layer0: Record<string, number | null> = {};
  for (const [metric, probe] of METRICS) {
    const r = rows.find((x) => x.model === modelLabel && x.layer === 'layer.0' && x.probe === probe);
    if (r) layer0[metric] = r[metric] as number | null;
  }
  return { command: 'structural', model: modelLabel, data: dataId, probes: kinds, best, baselines: { linear: baseline, 'layer.0': layer0 } };
}

/** `…/treebank.zip:treebank/combined/wsj_0180.mrg#5` → `wsj_0180.mrg#5`. */
function shortId(id: string): string {
  return id.split(/[/:]/).pop() || id;
}

function addFigures(rs: ResultSet, rows: readonly Record<string, unknown>[], records: readonly PredictionRecord[], kinds: StructuralKind[]): void {
  const probeRows = rows.filter((r) => r.model !== 'baseline');
  const baseline = rows.filter((r) => r.model === 'baseline');
  const layersSeen = [...new Set(probeRows.map((r) => String(r.layer)))];
  for (const [metric, probe] of METRICS) {
    if (!kinds.includes(probe)) continue;
    const base = baseline.find((r) => r.probe === probe)?.[metric];
    // The linear baseline does not depend on the layer: drawn as a flat line across the layers.
    const pts: Record<string, unknown>[] = [
      ...probeRows.filter((r) => r.probe === probe),
      ...(typeof base === 'number' ? layersSeen.map((layer) => ({ model: 'linear baseline', layer, [metric]: base })) : []),
    ];
    rs.addFigure(
      `${metric}-by-layer`,
      lineOverLayers({ rows: pts, y: metric, series: 'model', title: `${METRIC_TITLES[metric]} by layer (test split)`, yTitle: METRIC_TITLES[metric], yDomain: [0, 1] }),
      `${METRIC_TITLES[metric]} on the test split for each layer's ${probe} probe${typeof base === 'number' ? `; the linear baseline (flat line) scores ${base.toFixed(4)}` : ''}.`,
    );
  }
  if (!kinds.includes('distance')) return;
  // Gold (above) and predicted (below) trees of a few short test sentences at the best UUAS layer.
  const main = probeRows.filter((r) => r.probe === 'distance' && typeof r.uuas === 'number');
  const top = main.filter((r) => r.model === main[0]?.model).sort((a, b) => (b.uuas as number) - (a.uuas as number))[0];
  if (!top) return;
  const picked = records.filter((r) => r.model === top.model && r.layer === top.layer && r.words.length >= 5 && r.words.length <= 18).slice(0, 3);
  picked.forEach((r, k) => {
    const keep = (e: readonly number[]) => !r.punct[e[0]!] && !r.punct[e[1]!];
    const goldEdges = r.heads.map((h, i) => [i, h - 1] as [number, number]).filter((e) => e[1] >= 0 && keep(e));
    rs.addFigure(
      `tree-${k + 1}`,
      dependencyArcs({ words: r.words, gold: goldEdges, predicted: r.predicted_edges ?? [], title: `${shortId(r.id)}: gold (above), ${String(top.layer)} distance-probe MST (below)` }),
      `Test sentence ${r.id}: gold dependency edges above, the MST of ${String(top.model)} ${String(top.layer)}'s predicted distances below (punctuation excluded).`,
    );
  });
}

export const structuralFamily: ProbeFamily<StructuralOptions> = {
  command: 'structural',
  requires: ['trees'],
  accept: (s) => (s.heads ? treeProblem(s.heads) : 'no dependency heads'),
  activations: (opts, config) => ({ layers: structuralLayers(opts.layers, config), attentionLayers: [] }),
  units: (opts, config): Unit[] => structuralLayers(opts.layers, config).map((l) => ({ key: layerName(l), label: layerName(l), layers: [l], kind: 'layer' })),
  baseline: async (ctx) => {
    const b = linearBaseline(goldOf(ctx.splits.test.sentences), structuralKinds(ctx.opts), Boolean(ctx.opts.saveDistances));
    return { rows: b.rows, records: b.records as unknown as Record<string, unknown>[] };
  },
  runUnit,
  columns: RESULT_COLUMNS,
  columnDescriptions: COLUMN_DESCRIPTIONS,
  metrics: ['uuas', 'dspr', 'root_acc', 'nspr', 'best_dev_loss'],
  summarize: (rows, opts, run) => summarize(rows, run.model, run.data, structuralKinds(opts)),
  table: (seeds) => ['model', 'layer', 'probe', 'uuas', ...(seeds > 1 ? ['uuas_sd'] : []), 'dspr', 'root_acc', ...(seeds > 1 ? ['root_acc_sd'] : []), 'nspr', 'epochs'],
  figures: (rs, rows, records, opts) => addFigures(rs, rows, records as unknown as PredictionRecord[], structuralKinds(opts)),
  probesPerUnit: (opts) => structuralKinds(opts).length,
  trainingWork: (opts, config, words) => {
    // Per epoch: X·B and the gradient Xᵀ·dT over the train words (2·2·W·H·rank), the dev loss
    // (2·W·H·rank); then the test projections once. Typical epochs: the regimen stops 5 epochs
    // after the best dev loss, 16–24 epochs per probe on the PTB sample (random-init bert-base).
    const H = config.hiddenSize;
    const rank = opts.rank ?? H;
    const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
    const epoch = 4 * sum(words.train) * H * rank + 2 * sum(words.dev) * H * rank;
    const test = 2 * sum(words.test) * H * rank;
    const typical = Math.min(opts.maxEpochs, TYPICAL_EPOCHS);
    const fits = structuralLayers(opts.layers, config).length * structuralKinds(opts).length;
    return { fits, flopsPerFit: typical * epoch + test, maxFlopsPerFit: opts.maxEpochs * epoch + test, what: typical < opts.maxEpochs ? `probe fits of ~${typical} epochs (at most ${opts.maxEpochs})` : `probe fits of ${opts.maxEpochs} epoch(s)` };
  },
  dispose: disposeCompiledStructural,
  describe: (opts, config) => ({
    kinds: structuralKinds(opts),
    layers: structuralLayers(opts.layers, config).map(layerName),
    rank: opts.rank ?? config.hiddenSize,
    maxEpochs: opts.maxEpochs,
    batchSentences: BATCH_SENTENCES,
    backend: `onnxruntime-${opts.device}`,
    trainer: 'src/probes/trainer.ts trainProbe (Adam, PyTorch rule) on graphs derived from src/probes/blocks.ts structural L1 losses',
    params: 'per unit: <kind>.proj [hidden, rank] (B = projᵀ; distance ‖B(h_i−h_j)‖², depth ‖Bh_i‖²)',
  }),
};
