import { join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadSplits } from '../corpus/load.js';
import type { Corpus, Sentence } from '../corpus/types.js';
import { TfjsBert, TfjsEngine } from '../model/bert-tfjs.js';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import { requireMlmHead } from '../probes/masked-lm.js';
import { modelLabel } from '../probes/runner.js';
import { OnnxEngine, onnxAvailable } from '../model/onnx-engine.js';
import { selectTfjsBackend } from '../model/tfjs-backend.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { ANALYSES, COLUMN_DESCRIPTIONS, RESULT_COLUMNS, runAblation, type Analysis, type ModelAblation, type Row } from '../probes/ablate.js';
import { headGradients, importanceScores, RECIPES, type Recipe } from '../probes/ablate-importance.js';
import { fitting, GRADIENT_MAX_TOKENS, MASK_MODES, maskSentences, MLM_RATE, mlmScore, mlmSet, type MaskMode, type MlmSet } from '../probes/ablate-mlm.js';
import { pruningSchedule } from '../probes/ablate-prune.js';
import { prunedSpeed } from '../probes/ablate-speed.js';
import { ProbeUuas, readProbeRun } from '../probes/ablate-probe-run.js';
import { treeProblem } from '../probes/trees.js';
import { createResultSet, type ResultSet } from '../results/resultset.js';
import { heatmap, lineWithBand, scatter } from '../results/figures.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addRunOptions, isOffline, positiveInt, withExample, type CommonOptions } from './common.js';
import { addDataOptions, addSplitOptions, loadOptionsFrom, type DataCliOptions } from './data-options.js';

/**
 * `bert-probe ablate`: which attention heads matter (Michel, Levy & Neubig 2019, "Are Sixteen
 * Heads Really Better than One?"; definitions in REFERENCES.md §2). Metric: masked-LM loss on
 * the eval split. Analyses: single-head ablation, keep one head per layer, head importance by
 * recipe, pruning curves against random orders, and the pruned model's speed.
 */
interface AblateOptions extends CommonOptions, DataCliOptions {
  data: string;
  recipe: Recipe;
  maskMode: MaskMode;
  analyses: Analysis[];
  recompute?: boolean;
  randomOrders: number;
  threshold: number;
  speedAt: number;
  limit: number | null;
  control?: 'random';
  probeRun?: string;
}

/** What a saved probe can be re-scored for: importance needs gradients of its loss through BERT (not written yet). */
const PROBE_RUN_ANALYSES: readonly Analysis[] = ['ablation', 'keep-one'];

const DEFAULT_LIMIT = 500;

function parseAnalyses(v: string): Analysis[] {
  if (v === 'all') return [...ANALYSES];
  const out = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of out) if (!ANALYSES.includes(a as Analysis)) throw new InvalidArgumentError(`--analyses: '${a}' is not one of all, ${ANALYSES.join(', ')}`);
  if (!out.length) throw new InvalidArgumentError('--analyses: give at least one analysis');
  return out as Analysis[];
}

function fraction(name: string, open = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || n > 1 || (open && n === 1)) throw new InvalidArgumentError(`${name} must be a number in (0, 1${open ? ')' : ']'} (got '${v}')`);
    return n;
  };
}

function limitArg(v: string): number | null {
  if (v === 'all') return null;
  return positiveInt('--limit')(v);
}

export function register(program: Command): void {
  const cmd = program
    .command('ablate')
    .description('Which attention heads matter (Michel et al. 2019): mask heads and measure the masked-LM loss — single-head ablation, keep one head per layer, head importance, pruning curves, pruned-model speed')
    .addOption(new Option('--recipe <name>', 'importance and pruning recipe: michel (the authors\' code) or bertology (Hugging Face run_bertology.py)').choices([...RECIPES]).default('michel'))
    .addOption(new Option('--mask-mode <mode>', 'how the chosen 15% of word pieces are replaced: 80-10-10 as in BERT pre-training, or all by [MASK]').choices([...MASK_MODES]).default('80-10-10'))
    .option('--analyses <list>', `comma-separated: ${ANALYSES.join(', ')} (or all)`, parseAnalyses, [...ANALYSES])
    .option('--recompute', 'michel: recompute importance before every pruning step (M16 --exact_pruning; bertology always does)')
    .option('--random-orders <n>', 'random pruning orders drawn beside the importance order (seeded)', positiveInt('--random-orders'), 5)
    .option('--threshold <x>', 'prunable fraction: largest pruning step before the metric falls under x times the original (HF masking_threshold)', fraction('--threshold'), 0.9)
    .option('--speed-at <fraction>', 'fraction of heads pruned (importance order) for the pruned-model speed measurement', fraction('--speed-at', true), 0.5)
    .option('--limit <n|all>', `sentences used per split (the metric runs once per mask: hundreds of passes)`, limitArg, DEFAULT_LIMIT)
    .addOption(new Option('--control <kind>', 'also analyse the random-init control model of the same shape (labelled random-init)').choices(['random']))
    .option('--probe-run <dir>', 'metric: a saved structural probe run (its results folder) re-scored with heads masked: UUAS of the distance probe at its best layer (analyses: ablation, keep-one)');
  addDataOptions(cmd, { defaultData: 'ewt' });
  addSplitOptions(cmd);
  addModelOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe ablate --data ewt --model bert-base-uncased --recipe michel --limit 200');
  cmd.action(action(async (ui: Ui, opts: AblateOptions, command: Command) => runAblate(ui, opts, command)));
}

interface Sets {
  eval: MlmSet;
  importance: MlmSet;
  tooLong: { eval: number; importance: number };
}

/** Encode, drop what does not fit the positions, choose and mask pieces, batch. */
function buildSets(model: LoadedModel, evalCorpus: Corpus, importanceCorpus: Corpus, opts: AblateOptions): Sets {
  const tok = model.tokenizer;
  const make = (c: Corpus) => {
    const sentences = opts.limit === null ? c.sentences : c.sentences.slice(0, opts.limit);
    const { kept, tooLong } = fitting(sentences.map((s) => tok.encodeWords(s.words)), model.config.maxPositionEmbeddings);
    const examples = maskSentences(kept, { seed: opts.seed, mode: opts.maskMode, maskId: tok.maskId, vocabSize: model.config.vocabSize });
    return { examples, tooLong };
  };
  const e = make(evalCorpus);
  const i = importanceCorpus === evalCorpus ? e : make(importanceCorpus);
  const evalSet = mlmSet(e.examples, opts.batchSize, tok.padId);
  const importanceSet = mlmSet(i.examples, opts.batchSize, tok.padId, GRADIENT_MAX_TOKENS);
  if (evalSet.examples.length === 0) {
    throw new InputError(`${evalCorpus.id}: no sentence fits the model`, { expected: `sentences of at most ${model.config.maxPositionEmbeddings} word pieces`, found: `${e.tooLong} longer ones`, fix: 'use a corpus of shorter sentences or a model with more positions' });
  }
  return { eval: evalSet, importance: importanceSet, tooLong: { eval: e.tooLong, importance: i.tooLong } };
}

async function runAblate(ui: Ui, opts: AblateOptions, command?: Command): Promise<void> {
  const offline = isOffline(opts);
  const probeRun = opts.probeRun ? readProbeRun(resolve(opts.probeRun)) : null;
  if (probeRun) {
    const other = opts.analyses.filter((a) => !PROBE_RUN_ANALYSES.includes(a));
    if (other.length && command?.getOptionValueSource('analyses') !== 'default') {
      throw new InputError(`--probe-run: ${other.join(', ')} cannot be computed for a saved probe yet`, {
        expected: `--analyses ${PROBE_RUN_ANALYSES.join(',')} (importance needs gradients of the probe's loss through BERT; not implemented)`,
        found: `--analyses ${opts.analyses.join(',')}`,
        fix: `use --analyses ${PROBE_RUN_ANALYSES.join(',')}, or drop --probe-run for the masked-LM analyses`,
      });
    }
    opts.analyses = opts.analyses.filter((a) => PROBE_RUN_ANALYSES.includes(a));
    // The probe was scored on its run's data; re-score on the same unless --data says otherwise.
    if (command?.getOptionValueSource('data') === 'default' && probeRun.data) opts.data = probeRun.data;
    else if (probeRun.data && probeRun.data !== opts.data) ui.warn(`--probe-run: the probe was trained and scored on ${probeRun.data}; re-scoring it on ${opts.data}`);
  }
  const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: opts.seed, ui });
  if (!probeRun) requireMlmHead(model);
  else if (probeRun.weightsSha256 && probeRun.weightsSha256 !== model.source.weightsSha256) {
    throw new InputError('--probe-run: the probe was trained on another model', {
      file: join(probeRun.dir, 'manifest.json'),
      expected: `weights sha256 ${probeRun.weightsSha256.slice(0, 16)}… (the run's model)`,
      found: `${model.source.id}: ${model.source.weightsSha256.slice(0, 16)}…`,
      fix: 'pass the --model the probe run used',
    });
  }
  const splits = await loadSplits(opts.data, loadOptionsFrom(opts, ui, offline));
  const treeSentences = probeRun ? withTrees(splits.test, opts.limit, ui) : [];
  // Data (REFERENCES.md §2.3, §2.6): M16 computes importance on training data, HF on the set it evaluates.
  const importanceCorpus = opts.recipe === 'michel' ? splits.train : splits.test;
  const analyses = new Set(opts.analyses);
  const recompute = opts.recipe === 'bertology' || Boolean(opts.recompute);
  if (opts.recompute && opts.recipe === 'bertology') ui.warn('--recompute: the bertology recipe always recomputes importance');

  const rs = await createResultSet({ command: 'ablate', modelId: model.source.id, dataId: opts.data, out: opts.out, force: opts.force, seed: opts.seed, ui, json: opts.json });
  const models: LoadedModel[] = [model];
  if (opts.control === 'random') {
    if (model.source.randomInit) ui.warn('--control random: the model is already the random-init control; no second run');
    else models.push(await rs.stage('load control', () => loadModel(`random:${model.source.id}`, { revision: opts.revision, offline, seed: opts.seed, ui })));
  }
  // One masking per tokenizer: the control shares the model's (random:ID reads ID's vocabulary).
  const setsByTokenizer = new Map<string, Sets>();
  const setsFor = (m: LoadedModel): Sets => {
    let s = setsByTokenizer.get(m.tokenizer.fingerprint);
    if (!s) {
      s = buildSets(m, splits.test, importanceCorpus, opts);
      for (const [k, n] of Object.entries(s.tooLong)) if (n) ui.warn(`${k} split: left out ${n} sentence(s) longer than the model's ${m.config.maxPositionEmbeddings} positions`);
      setsByTokenizer.set(m.tokenizer.fingerprint, s);
    }
    return s;
  };
  const sets = probeRun ? null : setsFor(model);
  const L = model.config.numHiddenLayers;
  const heads = model.config.numAttentionHeads;
  const tfRuntime = await selectTfjsBackend(opts.backend, ui);
  rs.setManifest({
    model: { id: model.source.id, path: model.source.path, revision: model.source.revision ?? null, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    ...(models[1] ? { control: { id: models[1].source.id, weightsSha256: models[1].source.weightsSha256, randomInit: true } } : {}),
    data: {
      id: opts.data,
      eval: { split: splits.test.id, sha256: splits.test.sha256, sentences: sets ? sets.eval.examples.length : treeSentences.length, ...(sets ? { tooLong: sets.tooLong.eval, tokens: sets.eval.tokens } : {}) },
      ...(sets ? { importance: { split: importanceCorpus.id, sha256: importanceCorpus.sha256, sentences: sets.importance.examples.length, tooLong: sets.tooLong.importance, tokens: sets.importance.tokens } } : {}),
      limit: opts.limit,
    },
    ablate: {
      recipe: opts.recipe,
      recipeDetails: recipeDetails(opts.recipe, recompute, L * heads),
      metric: probeRun
        ? { name: 'uuas', higherIsBetter: true, probeRun: probeRun.dir, family: probeRun.family, layer: probeRun.unit, rank: probeRun.rank, probeSeed: probeRun.seed, uuasInRun: probeRun.uuas, pooling: 'mean', sentences: treeSentences.length }
        : { name: 'mlm_loss', higherIsBetter: false, maskMode: opts.maskMode, rate: MLM_RATE, count: 'max(1, round(0.15 x content pieces)) per sentence', pieces: sets!.eval.pieces, seed: opts.seed },
      analyses: [...analyses],
      randomOrders: opts.randomOrders,
      threshold: opts.threshold,
      speedAt: opts.speedAt,
      gradients: `tfjs ${tfRuntime.label}`,
    },
  });

  const results: ModelAblation[] = [];
  const rows: Row[] = [];
  for (const m of models) {
    const label = modelLabel(m);
    let probe = probeRun;
    if (probeRun && m !== model) {
      try {
        probe = readProbeRun(probeRun.dir, label);
      } catch (err) {
        ui.warn(`--probe-run: no saved probe for the control ${label} (${(err as Error).message.split('\n')[0]}); the control is skipped`);
        continue;
      }
    }
    const mSets = probe ? null : setsFor(m);
    const engine = await rs.stage(`${label}: engine`, () => createEngine(m, { engine: opts.engine, backend: opts.backend, device: opts.device, ui }));
    if (m === model) rs.setManifest({ engine: engine.kind, backend: engine.backend });
    let bert: TfjsBert | null = null;
    let speedEngine: Engine | null = null;
    try {
      const getBert = () => (bert ??= engine instanceof TfjsEngine ? engine.bert : new TfjsBert(tfRuntime.tf, m.config, m.weights, true));
      const r = await runAblation(
        {
          label,
          layers: L,
          heads,
          metric: probe
            ? (() => {
                const uuas = new ProbeUuas(engine, m, probe, treeSentences, opts.batchSize);
                return { name: 'uuas', higherIsBetter: true, evaluate: (mask: Float32Array) => uuas.evaluate(mask) };
              })()
            : { name: 'mlm_loss', higherIsBetter: false, evaluate: async (mask: Float32Array) => (await mlmScore(engine, mSets!.eval, mask)).loss },
          importance: async (mask) => {
            if (!mSets) throw new RuntimeFailure('head importance needs the masked-LM loss (no gradients through a saved probe)');
            const b = getBert();
            if (tfRuntime.tf.getBackend() !== tfRuntime.backend) await tfRuntime.tf.setBackend(tfRuntime.backend);
            const bar = ui.bar(`${label}: importance gradients`, mSets.importance.batches.length, '{bar} {value}/{total} batches | ETA {eta_formatted}');
            const gradients = await headGradients(b, mSets.importance, mask, () => bar.increment());
            bar.stop();
            return { ...importanceScores(gradients, opts.recipe, L, heads), gradients };
          },
          speed: mSets && (await onnxAvailable())
            ? async (mask) => {
                speedEngine ??= engine instanceof OnnxEngine ? engine : await OnnxEngine.create(m, { device: opts.device, ui });
                return prunedSpeed(m, speedEngine, mSets.eval.batches.map((b) => b.batch), mask);
              }
            : null,
          stage: (name, fn) => rs.stage(name, fn),
          bar: (name, total) => ui.bar(name, total, '{bar} {value}/{total} masks | ETA {eta_formatted}'),
        },
        { recipe: opts.recipe, recompute, analyses, randomOrders: opts.randomOrders, seed: opts.seed, threshold: opts.threshold, speedAt: opts.speedAt },
      );
      results.push(r);
      rows.push(...r.rows);
      rs.writeRows(rows, [...RESULT_COLUMNS], COLUMN_DESCRIPTIONS);
    } finally {
      if (bert && !(engine instanceof TfjsEngine)) (bert as TfjsBert).dispose();
      if (speedEngine && speedEngine !== engine) await (speedEngine as Engine).dispose();
      await engine.dispose();
    }
  }
  rs.writeRows(rows, [...RESULT_COLUMNS], COLUMN_DESCRIPTIONS);
  addFigures(rs, results, opts.recipe, L * heads, probeRun ? `UUAS (${probeRun.unit} distance probe)` : 'masked-LM loss');
  const summary = {
    command: 'ablate',
    model: model.source.id,
    data: opts.data,
    recipe: opts.recipe,
    metric: probeRun
      ? { name: 'uuas', higherIsBetter: true, probeRun: probeRun.dir, layer: probeRun.unit, uuasInRun: probeRun.uuas, sentences: treeSentences.length }
      : { name: 'mlm_loss', higherIsBetter: false, maskMode: opts.maskMode, sentences: sets!.eval.examples.length, pieces: sets!.eval.pieces },
    models: Object.fromEntries(results.map((r) => [r.label, r.summary])),
  };
  const table = results.map((r) => {
    const s = r.summary as Record<string, Record<string, unknown> | undefined>;
    const top = (s.singleHead?.mostDecisive as { unit: string }[] | undefined)?.[0]?.unit ?? null;
    const imp = (s.importance?.mostImportant as { unit: string }[] | undefined)?.[0]?.unit ?? null;
    return { model: r.label, recipe: opts.recipe, baseline: r.baseline, most_decisive: top, most_important: imp, spearman: s.importance?.spearmanWithAblation ?? null, prunable: s.pruning?.prunableFraction ?? null, speedup: s.speed?.speedup ?? null };
  });
  await rs.finish(summary, { columns: ['model', 'recipe', 'baseline', 'most_decisive', 'most_important', 'spearman', 'prunable', 'speedup'], rows: table });
}

/** The eval split's sentences with a valid tree (the structural probe's metric needs them). */
function withTrees(corpus: Corpus, limit: number | null, ui: Ui): Sentence[] {
  const kept = corpus.sentences.filter((s) => s.heads && !treeProblem(s.heads));
  if (!kept.length) throw new InputError(`${corpus.id} has no sentence with a dependency tree`, { file: corpus.files[0], expected: 'a treebank split (UUAS needs gold trees)', found: `${corpus.sentences.length} sentences without trees`, fix: 'use --data ewt, ptb, or a .conllu file' });
  if (kept.length < corpus.sentences.length) ui.warn(`${corpus.id}: skipped ${corpus.sentences.length - kept.length} sentence(s) without a valid tree`);
  return limit === null ? kept : kept.slice(0, limit);
}

/** What the recipe does, written into the manifest (REFERENCES.md §2.3-2.6). */
function recipeDetails(recipe: Recipe, recompute: boolean, total: number): Record<string, unknown> {
  const common = { steps: pruningSchedule(recipe, total), importanceRecomputed: recompute, layerNormalisation: 'L2 per layer (+1e-20)' };
  return recipe === 'michel'
    ? {
        ...common,
        source: 'pmichel31415/pytorch-pretrained-BERT@18a86a7035 examples/classifier_eval.py:187-254, run_classifier.py:369-525',
        importanceData: 'train split',
        absoluteValue: 'per token',
        countNormalisation: 'layers 1..L-1 by real tokens, the last layer by the predicted pieces (M16: by examples, as only [CLS] feeds its loss)',
        stepPercent: 5,
      }
    : {
        ...common,
        source: 'huggingface/transformers@0a8c149f1e examples/research_projects/bertology/run_bertology.py',
        importanceData: 'eval split (the set the metric is measured on)',
        absoluteValue: 'per example (batch of one)',
        countNormalisation: 'every layer by real tokens',
        globalNormalisation: 'min-max to [0, 1]',
        stepPercent: 10,
      };
}

function addFigures(rs: ResultSet, results: ModelAblation[], recipe: Recipe, total: number, metric: string): void {
  results.forEach((r, k) => {
    const suffix = k === 0 ? '' : '-control';
    if (r.delta) {
      rs.addFigure(`ablation-delta${suffix}`, heatmap({ values: r.delta, title: `${r.label}: Δ ${metric} with one head masked`, valueTitle: 'Δ', scheme: 'blueorange', ...symmetric(r.delta) }),
        `Single-head ablation (${r.label}): ${metric} with head (layer, head) masked alone, minus the unmasked ${r.baseline.toFixed(4)}. Orange: it rises; blue: it falls.`);
    }
    if (r.importance) {
      rs.addFigure(`importance${suffix}`, heatmap({ values: r.importance, title: `${r.label}: head importance (${recipe})`, valueTitle: 'importance' }),
        `Head importance I_h = E|∂L/∂ξ_h| (${recipe} recipe, normalised as the recipe does) of ${r.label}.`);
      if (r.delta) {
        const heads = r.delta[0]!.length;
        rs.addFigure(`importance-vs-ablation${suffix}`, scatter({
          points: r.delta.flat().map((d, i) => ({ x: r.importance!.flat()[i]!, y: d, label: `${Math.floor(i / heads) + 1}-${(i % heads) + 1}` })),
          xTitle: `importance (${recipe})`, yTitle: `Δ ${metric}, head masked alone`, title: `${r.label}: importance against single-head ablation`, showLabels: total <= 48,
        }), `Each head's importance against the change in ${metric} when it alone is masked (${r.label}).`);
      }
    }
    if (r.curves) {
      const pts = r.curves.importance.points;
      const lines = pts.map((p) => ({ series: 'importance order', x: p.headsPruned / total, y: p.value }));
      const bands: { series: string; x: number; lo: number; hi: number }[] = [];
      if (r.curves.random.length) {
        pts.forEach((p, i) => {
          const vals = r.curves!.random.map((c) => c.points[i]!.value);
          const x = p.headsPruned / total;
          lines.push({ series: `random order (mean of ${vals.length})`, x, y: vals.reduce((a, b) => a + b, 0) / vals.length });
          bands.push({ series: `random order (mean of ${vals.length})`, x, lo: Math.min(...vals), hi: Math.max(...vals) });
        });
      }
      lines.unshift({ series: 'importance order', x: 0, y: r.baseline });
      if (r.curves.random.length) lines.push({ series: `random order (mean of ${r.curves.random.length})`, x: 0, y: r.baseline });
      rs.addFigure(`pruning-curve${suffix}`, lineWithBand({ lines, bands, rule: { y: r.baseline, label: 'unpruned' }, title: `${r.label}: pruning heads (${recipe})`, xTitle: 'fraction of heads pruned', yTitle: metric, xFormat: '.0%' }),
        `The ${metric} as heads are pruned in order of importance (${recipe} recipe) and in ${r.curves.random.length} random orders (mean, shaded min–max), ${r.label}. The dashed line is the unpruned value.`);
    }
  });
}

/** A colour domain symmetric around 0, so white means "no change". */
function symmetric(values: number[][]): { domain: [number, number] } {
  const m = Math.max(1e-12, ...values.flat().map(Math.abs));
  return { domain: [-m, m] };
}
