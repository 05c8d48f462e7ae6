import { Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { loadSplits } from '../corpus/load.js';
import type { Corpus, Sentence } from '../corpus/types.js';
import { extractActivations } from '../extract/pipeline.js';
import { createEngine } from '../model/engine.js';
import { loadModel, peekConfig } from '../model/load.js';
import { selectTfjsBackend } from '../model/tfjs-backend.js';
import type { LoadedModel } from '../model/types.js';
import type { ActivationStore } from '../extract/store.js';
import { goldSentence, type PredictionRecord } from '../probes/structural-eval.js';
import { COLUMN_DESCRIPTIONS, linearBaseline, RESULT_COLUMNS, runLayer, type ResultRow, type StructuralSplits } from '../probes/structural-run.js';
import { structuralProbeBackend, structuralProbeBackendLabel, type StructuralKind } from '../probes/structural.js';
import { treeProblem } from '../probes/trees.js';
import { createResultSet } from '../results/resultset.js';
import { dependencyArcs, lineOverLayers } from '../results/figures.js';
import { InputError } from '../util/errors.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addRunOptions, isOffline, positiveInt, withExample, type CommonOptions } from './common.js';

interface StructuralOptions extends CommonOptions {
  data: string;
  layers: string;
  probe: 'distance' | 'depth' | 'both';
  rank?: number;
  control?: 'random';
  saveDistances?: boolean;
  limit?: number;
  maxEpochs: number;
  trainSplit?: string;
  devSplit?: string;
  evalSplit?: string;
  headRules?: 'stanford' | 'collins';
  format?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('structural')
    .description("Hewitt & Manning's structural probe: can a linear map of each layer's word vectors recover the dependency tree (distance probe: UUAS, DSpr.) and word depth (depth probe: root accuracy, NSpr.)?")
    .option('-d, --data <name|file>', 'treebank: registry name (ptb, ewt), NAME:SPLIT, or a CoNLL-U/CoNLL-X/PTB file or folder', 'ptb')
    .option('-l, --layers <spec>', 'hidden states to probe: all, 0-12, 4,8,12, -1 (layer.0, the embeddings baseline, is always added)', 'all')
    .addOption(new Option('--probe <kind>', 'which probe to train').choices(['distance', 'depth', 'both']).default('both'))
    .option('--rank <r>', 'rows of the probe matrix B (default: the hidden size)', positiveInt('--rank'))
    .addOption(new Option('--control <kind>', 'also probe the random-init control model of the same shape (labelled random-init)').choices(['random']))
    .option('--save-distances', 'write every predicted distance matrix into predictions.jsonl (needed to recompute DSpr.)')
    .option('--limit <n>', 'use only the first N sentences of each split (for quick runs and tests)', positiveInt('--limit'))
    .option('--max-epochs <n>', 'training epochs at most (Hewitt & Manning: 40)', positiveInt('--max-epochs'), 40)
    .option('--train-split <name>', 'split to train on (default: train)')
    .option('--dev-split <name>', 'split to select the epoch on (default: dev)')
    .option('--eval-split <name>', 'split to report on (default: test)')
    .addOption(new Option('--head-rules <scheme>', 'head rules for constituency treebanks (ptb)').choices(['stanford', 'collins']))
    .addOption(new Option('--format <format>', 'format of a --data PATH (default: from the extension, then the content)').choices([...FORMATS]));
  addModelOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe structural --data ptb --model bert-base-uncased --layers all --control random');
  cmd.action(action(async (ui: Ui, opts: StructuralOptions) => runStructural(ui, opts)));
}

/** Keep sentences with a valid single-rooted tree; count and report the others. */
function treeSentences(corpus: Corpus, ui: Ui, limit?: number): Sentence[] {
  const bad: string[] = [];
  const out: Sentence[] = [];
  for (const s of corpus.sentences) {
    const problem = s.heads ? treeProblem(s.heads) : 'no dependency heads';
    if (problem) bad.push(`${s.source.file}:${s.source.line}: ${problem}`);
    else out.push(s);
  }
  if (out.length === 0) {
    throw new InputError(`${corpus.id} has no sentence with a dependency tree`, {
      file: corpus.files[0],
      expected: 'sentences with heads (CoNLL-U/CoNLL-X HEAD column, or PTB trees converted by head rules)',
      found: bad[0] ?? 'no sentences',
      fix: 'use a treebank (--data ptb, --data ewt, or a .conllu file)',
    });
  }
  if (bad.length) ui.warn(`${corpus.id}: skipped ${bad.length} sentence(s) without a valid tree (first: ${bad[0]})`);
  return limit !== undefined ? out.slice(0, limit) : out;
}

function subCorpus(corpus: Corpus, sentences: Sentence[]): Corpus {
  if (sentences.length === corpus.sentences.length) return corpus;
  // A different id keeps the activation-store cache of the full split apart from this subset.
  return { ...corpus, id: `${corpus.id}[${sentences.length} tree sentences: ${sentences[0]!.id}..${sentences[sentences.length - 1]!.id}]`, sentences };
}

async function runStructural(ui: Ui, opts: StructuralOptions): Promise<void> {
  const kinds: StructuralKind[] = opts.probe === 'both' ? ['distance', 'depth'] : [opts.probe];
  const offline = isOffline(opts);
  // Cheap checks first (issue 15): the data selection and --layers fail before the model builds.
  const peeked = peekConfig(opts.model, opts.revision);
  if (peeked) parseLayerSpec(opts.layers, peeked.numHiddenLayers);
  const raw = await loadSplits(opts.data, {
    offline,
    ui,
    ...(opts.format ? { format: opts.format } : {}),
    ...(opts.headRules ? { headRules: opts.headRules } : {}),
    ...(opts.trainSplit ? { trainSplit: opts.trainSplit } : {}),
    ...(opts.devSplit ? { devSplit: opts.devSplit } : {}),
    ...(opts.evalSplit ? { evalSplit: opts.evalSplit } : {}),
  });
  const splits: StructuralSplits = {
    train: treeSentences(raw.train, ui, opts.limit),
    dev: treeSentences(raw.dev, ui, opts.limit),
    test: treeSentences(raw.test, ui, opts.limit),
  };
  const corpora = { train: subCorpus(raw.train, splits.train), dev: subCorpus(raw.dev, splits.dev), test: subCorpus(raw.test, splits.test) };
  const dataId = opts.data;

  const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: opts.seed, ui });
  const numLayers = model.config.numHiddenLayers;
  const layers = [...new Set([0, ...parseLayerSpec(opts.layers, numLayers)])].sort((a, b) => a - b);
  if (opts.rank !== undefined && opts.rank > model.config.hiddenSize) ui.warn(`--rank ${opts.rank} is above the hidden size ${model.config.hiddenSize}: the extra rows add nothing`);

  const rs = await createResultSet({ command: 'structural', modelId: model.source.id, dataId, out: opts.out, force: opts.force, seed: opts.seed, ui, json: opts.json });
  const models: LoadedModel[] = [model];
  if (opts.control === 'random') {
    if (model.source.randomInit) ui.warn('--control random: the model is already the random-init control; no second run');
    else models.push(await rs.stage('load control', () => loadModel(`random:${model.source.id}`, { revision: opts.revision, offline, seed: opts.seed, ui })));
  }
  rs.setManifest({
    model: { id: model.source.id, path: model.source.path, revision: model.source.revision ?? null, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    ...(models[1] ? { control: { id: models[1].source.id, weightsSha256: models[1].source.weightsSha256, randomInit: true } } : {}),
    data: {
      id: dataId,
      splits: Object.fromEntries(
        (['train', 'dev', 'test'] as const).map((k) => [k, { id: raw[k].id, sha256: raw[k].sha256, files: raw[k].files, sentences: splits[k].length, skipped: raw[k].skipped }]),
      ),
    },
    probe: { kinds, layers: layers.map(layerName), rank: opts.rank ?? model.config.hiddenSize, maxEpochs: opts.maxEpochs, batchSentences: 20, limit: opts.limit ?? null },
  });

  const gold = splits.test.map(goldSentence);
  const rows: ResultRow[] = [];
  const records: PredictionRecord[] = [];
  const baseline = linearBaseline(gold, kinds, Boolean(opts.saveDistances));
  rows.push(...baseline.rows);
  records.push(...baseline.records);

  for (const m of models) {
    const label = m.source.randomInit ? (m.source.id.startsWith('random-init') ? m.source.id : `random-init(${m.source.id})`) : m.source.id;
    const stores = await rs.stage(`extract ${label}`, async () => {
      const engine = await createEngine(m, { engine: opts.engine, backend: opts.backend, device: opts.device, ui });
      rs.setManifest(m === model ? { engine: engine.kind, backend: engine.backend } : { control: { engine: engine.kind, backend: engine.backend } });
      try {
        const out: Partial<Record<'train' | 'dev' | 'test', ActivationStore>> = {};
        for (const k of ['train', 'dev', 'test'] as const) {
          out[k] = await extractActivations({ model: m, engine, corpus: corpora[k], request: { layers, attentionLayers: [] }, batchSize: opts.batchSize, ui });
        }
        return out as Record<'train' | 'dev' | 'test', ActivationStore>;
      } finally {
        await engine.dispose();
      }
    });
    const runtime = await selectTfjsBackend(opts.engine === 'tfjs' || opts.backend ? opts.backend : undefined, ui);
    // Which one computes the probe's losses and gradients (onnxruntime unless tfjs is native).
    rs.setManifest({ probeBackend: structuralProbeBackendLabel(structuralProbeBackend(runtime.tf), runtime.label) });
    // After extraction, which shows its own progress.
    const bar = ui.bar(label, layers.length * kinds.length, '{bar} {value}/{total} probes trained | ETA {eta_formatted}');
    for (const layer of layers) {
      const r = await rs.stage(`train ${label} ${layerName(layer)}`, () =>
        runLayer(stores, splits, gold, layer, {
          tf: runtime.tf,
          kinds,
          ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
          seed: opts.seed,
          maxEpochs: opts.maxEpochs,
          saveDistances: Boolean(opts.saveDistances),
          model: label,
          ui,
        }),
      );
      rows.push(...r.rows);
      records.push(...r.records);
      rs.writeRows(rows, [...RESULT_COLUMNS], COLUMN_DESCRIPTIONS);
      bar.increment(kinds.length);
    }
    bar.stop();
  }
  rs.writeRows(rows, [...RESULT_COLUMNS], COLUMN_DESCRIPTIONS);
  rs.writePredictions(records);
  addFigures(rs, rows, records, kinds);
  await rs.finish(summarize(rows, model.source.id, dataId, kinds), {
    columns: ['model', 'layer', 'probe', 'uuas', 'dspr', 'root_acc', 'nspr', 'epochs'],
    rows,
  });
}

const METRIC_TITLES: Record<string, string> = { uuas: 'UUAS', dspr: 'DSpr.', root_acc: 'root accuracy', nspr: 'NSpr.' };

const METRICS = [
  ['uuas', 'distance'],
  ['dspr', 'distance'],
  ['root_acc', 'depth'],
  ['nspr', 'depth'],
] as const;

/** summary.json: best layer per metric for each model, and the baseline's scores. */
export function summarize(rows: readonly ResultRow[], modelId: string, dataId: string, kinds: StructuralKind[]): Record<string, unknown> {
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
    const r = rows.find((x) => x.model === modelId && x.layer === 'layer.0' && x.probe === probe);
    if (r) layer0[metric] = r[metric] as number | null;
  }
  return { command: 'structural', model: modelId, data: dataId, probes: kinds, best, baselines: { linear: baseline, 'layer.0': layer0 } };
}

/** `…/treebank.zip:treebank/combined/wsj_0180.mrg#5` → `wsj_0180.mrg#5`. */
function shortId(id: string): string {
  return id.split(/[/:]/).pop() || id;
}

function addFigures(
  rs: Awaited<ReturnType<typeof createResultSet>>,
  rows: readonly ResultRow[],
  records: readonly PredictionRecord[],
  kinds: StructuralKind[],
): void {
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
      dependencyArcs({ words: r.words, gold: goldEdges, predicted: r.predicted_edges ?? [], title: `${shortId(r.id)}: gold (above), ${top.layer} distance-probe MST (below)` }),
      `Test sentence ${r.id}: gold dependency edges above, the MST of ${top.model} ${top.layer}'s predicted distances below (punctuation excluded).`,
    );
  });
}
