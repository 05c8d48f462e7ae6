/**
 * The one runner (issue 9 item 1; PLATFORM.md §5): everything a probe command does that is not
 * the family's own math. In order:
 *  1. data: the splits through the one data-selection path (src/corpus/load.ts loadSplits,
 *     NAME:SPLIT honoured), the sentences the family can use (its `requires` and `accept`; the
 *     others counted and reported), `--limit`;
 *  2. model: `--model` (random-init weights from `--model-seed`, never from `--seed`) and, with
 *     `--control random`, the random-init control of the same shape;
 *  3. activations per model and split: extracted into the store (reused when present) or read
 *     from `--activations` folders;
 *  4. per model × unit × seed (`--seeds K`: seeds seed, seed+1, …): `family.runUnit`, with a
 *     progress bar, the trained parameters saved under `<run>/probes/`, rows written as they come;
 *  5. results: rows (metrics as mean with `<metric>_sd` beside under --seeds K), predictions,
 *     figures, summary, manifest (the splits' sentence counts and id hashes, so which sentences
 *     trained, selected and evaluated is on record), report.
 * A command is its option spec plus `runProbe(family, opts, ui)`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { loadSplits } from '../corpus/load.js';
import type { Corpus, Sentence } from '../corpus/types.js';
import { extractActivations, storeComplete } from '../extract/pipeline.js';
import { estimateRun, extractionFlops, measureMatmulGflops } from './estimate.js';
import type { ActivationRequest, ActivationSource } from '../extract/request.js';
import { openActivations } from '../extract/sources/open.js';
import { createEngine } from '../model/engine.js';
import { canonicalModelId, loadModel, peekConfig } from '../model/load.js';
import { isOffline } from '../model/resolve.js';
import { writeSafetensors } from '../model/safetensors.js';
import type { BertConfig, LoadedModel } from '../model/types.js';
import { createResultSet, sanitizeId as sanitizeFileName, type ResultSet } from '../results/resultset.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import type { CorpusNeed, ProbeFamily, RunnerOptions, SplitData, SplitName, Unit, UnitContext, UnitResult } from './contract.js';
import { treeProblem } from './trees.js';

export const SPLITS: readonly SplitName[] = ['train', 'dev', 'test'];

/** Default seed of random-init model weights (the old shared --seed default, so runs compare). */
export const DEFAULT_MODEL_SEED = 42;

/** What each split is used for; the manifest records it beside the split's ids. */
const SPLIT_USE: Record<SplitName, string> = { train: 'fit the probe parameters', dev: 'select the epoch / model (early stopping)', test: 'evaluate (every reported metric)' };

/** Why a sentence cannot serve a need; null when it can. */
function needProblem(need: CorpusNeed, s: Sentence): string | null {
  switch (need) {
    case 'trees':
      return s.heads ? treeProblem(s.heads) : 'no dependency heads';
    case 'labels':
      return s.label !== undefined || s.upos || s.xpos ? null : 'no labels';
    case 'spans':
      return s.entities || s.srl ? null : 'no labelled spans';
    case 'senses':
      return s.senses?.some((x) => x) ? null : 'no sense tags';
    case 'text':
      return s.words.length ? null : 'no words';
  }
}

const NEED_WORDS: Record<CorpusNeed, { what: string; expected: string; fix: string }> = {
  trees: {
    what: 'a dependency tree',
    expected: 'sentences with heads (CoNLL-U/CoNLL-X HEAD column, or PTB trees converted by head rules)',
    fix: 'use a treebank (--data ptb, --data ewt, or a .conllu file)',
  },
  labels: { what: 'labels', expected: 'sentences with a label or per-word tags', fix: 'use a labelled corpus (bert-probe data list)' },
  spans: { what: 'labelled spans', expected: 'sentences with entities or SRL frames', fix: 'use a corpus with spans (e.g. NER or PropBank)' },
  senses: { what: 'sense tags', expected: 'sentences with word senses', fix: 'use a sense-tagged corpus (e.g. semcor)' },
  text: { what: 'words', expected: 'non-empty sentences', fix: 'check the corpus file' },
};

/** Keep the sentences the family can use, in corpus order; report the others. */
export function selectSentences(family: Pick<ProbeFamily<RunnerOptions>, 'requires' | 'accept'>, corpus: Corpus, ui: Ui, limit?: number): { kept: Sentence[]; dropped: number } {
  const bad: string[] = [];
  const kept: Sentence[] = [];
  for (const s of corpus.sentences) {
    let problem: string | null = null;
    for (const need of family.requires) if ((problem = needProblem(need, s))) break;
    if (!problem && family.accept) problem = family.accept(s);
    if (problem) bad.push(`${s.source.file}:${s.source.line}: ${problem}`);
    else kept.push(s);
  }
  if (kept.length === 0) {
    const need = NEED_WORDS[family.requires[0] ?? 'text'];
    throw new InputError(`${corpus.id} has no sentence with ${need.what}`, { file: corpus.files[0], expected: need.expected, found: bad[0] ?? 'no sentences', fix: need.fix });
  }
  if (bad.length) ui.warn(`${corpus.id}: skipped ${bad.length} sentence(s) without ${NEED_WORDS[family.requires[0] ?? 'text'].what} (first: ${bad[0]})`);
  return { kept: limit !== undefined ? kept.slice(0, limit) : kept, dropped: bad.length };
}

/** A corpus holding only the kept sentences; a different id keeps the store cache of the full split apart. */
function subCorpus(corpus: Corpus, sentences: Sentence[]): Corpus {
  if (sentences.length === corpus.sentences.length) return corpus;
  return { ...corpus, id: `${corpus.id}[${sentences.length} tree sentences: ${sentences[0]!.id}..${sentences[sentences.length - 1]!.id}]`, sentences };
}

/** sha256 of the sentence ids joined by newlines: which sentences a split used, in order. */
export function idsHash(sentences: readonly Sentence[]): string {
  const h = createHash('sha256');
  sentences.forEach((s, i) => h.update((i ? '\n' : '') + s.id));
  return h.digest('hex');
}

/** The label rows and records carry for a model: random-init controls say so. */
export function modelLabel(m: LoadedModel): string {
  return m.source.randomInit ? (m.source.id.startsWith('random-init') ? m.source.id : `random-init(${m.source.id})`) : m.source.id;
}

/** `--activations`: `SPLIT=DIR` items (a split may name several --shard stores). */
function activationDirs(items: readonly string[]): Record<SplitName, string[]> {
  const out: Record<SplitName, string[]> = { train: [], dev: [], test: [] };
  for (const item of items) {
    const m = /^(train|dev|test)=(.+)$/.exec(item);
    if (!m) throw new InputError(`--activations ${item}: which split is it?`, { expected: 'SPLIT=PATH with SPLIT train, dev or test (repeat for each split)', found: item, fix: `e.g. --activations train=stores/train dev=stores/dev test=stores/test` });
    out[m[1] as SplitName].push(m[2]!);
  }
  for (const k of SPLITS) {
    if (!out[k].length) throw new InputError(`--activations names no ${k} store`, { expected: 'train=PATH, dev=PATH and test=PATH', found: items.join(' '), fix: `add ${k}=PATH` });
  }
  return out;
}

/** Where each kept sentence sits in the split it was kept from. */
function positionsIn(all: readonly Sentence[], kept: readonly Sentence[]): number[] {
  const at = new Map(all.map((s, i) => [s, i]));
  return kept.map((s) => {
    const i = at.get(s);
    if (i === undefined) throw new Error(`kept sentence ${s.id} is not in its split`);
    return i;
  });
}

/** The hidden states a family asks for are all in the given activations, or exit 2. */
function checkLayers(source: ActivationSource, split: SplitName, request: ActivationRequest, where: string): void {
  const missing = request.layers.filter((l) => !source.layers.includes(l));
  if (missing.length) {
    throw new InputError(`--activations ${split}: no ${missing.map((l) => `layer.${l}`).join(', ')}`, { file: where, expected: `hidden states ${request.layers.join(', ')}`, found: `layers ${source.layers.join(', ') || 'none'}`, fix: 'extract those layers too, or pass --layers with the ones the activations have' });
  }
}

/** Mean and sample standard deviation (n − 1); sd is null for one value. */
export function meanSd(values: readonly number[]): { mean: number; sd: number | null } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, sd: null };
  return { mean, sd: Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) };
}

/**
 * --seeds K: one row per row position of a unit, the metrics as mean over seeds with
 * `<metric>_sd` beside; other columns from the first seed.
 */
export function aggregateSeeds(perSeed: readonly Record<string, unknown>[][], metrics: readonly string[]): Record<string, unknown>[] {
  const first = perSeed[0] ?? [];
  return first.map((row, i) => {
    const out: Record<string, unknown> = { ...row };
    for (const m of metrics) {
      const vals = perSeed.map((rows) => rows[i]?.[m]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      if (vals.length === 0) {
        out[m] = row[m] ?? null;
        out[`${m}_sd`] = null;
      } else {
        const { mean, sd } = meanSd(vals);
        out[m] = mean;
        out[`${m}_sd`] = sd;
      }
    }
    out.seeds = perSeed.length;
    return out;
  });
}

/** Result columns: under --seeds K each metric is followed by its `_sd`, and `seeds` ends the row. */
export function resultColumns(columns: readonly string[], metrics: readonly string[], seeds: number): string[] {
  if (seeds <= 1) return [...columns];
  return [...columns.flatMap((c) => (metrics.includes(c) ? [c, `${c}_sd`] : [c])), 'seeds'];
}

interface SavedUnit {
  model: string;
  unit: string;
  label: string;
  kind: Unit['kind'];
  layers: number[];
  seed: number;
  file: string;
  params: { name: string; shape: number[] }[];
  extra?: Record<string, unknown>;
  training?: Record<string, unknown>;
}

/** `<run>/probes/<model-label>/<unit-key>[.seed-S].safetensors`, and probes/index.json listing them. */
class ProbeSaver {
  private readonly units: SavedUnit[] = [];
  /** probes/index.json of the run this one resumes (its files are still there). */
  private readonly previous: SavedUnit[];
  constructor(
    private readonly rs: ResultSet,
    private readonly header: Record<string, unknown>,
  ) {
    try {
      this.previous = (JSON.parse(readFileSync(join(rs.dir, 'probes', 'index.json'), 'utf8')) as { units?: SavedUnit[] }).units ?? [];
    } catch {
      this.previous = [];
    }
  }

  /** A unit reused from the interrupted run: keep its saved parameters in the index. */
  keep(model: string, unit: string): void {
    const kept = this.previous.filter((u) => u.model === model && u.unit === unit && existsSync(join(this.rs.dir, 'probes', u.file)));
    if (!kept.length) return;
    this.units.push(...kept);
    writeJsonAtomic(join(this.rs.dir, 'probes', 'index.json'), { ...this.header, units: this.units });
  }

  save(model: string, unit: Unit, seed: number, seeds: number, params: NonNullable<UnitResult['params']>, training?: Record<string, unknown>): void {
    const dir = join(this.rs.dir, 'probes', sanitizeFileName(model));
    mkdirSync(dir, { recursive: true });
    const name = `${sanitizeFileName(unit.key)}${seeds > 1 ? `.seed-${seed}` : ''}.safetensors`;
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    params.names.forEach((n, i) => (tensors[n] = { dtype: 'F32', shape: params.shapes[i]!, data: params.values[i]! }));
    writeSafetensors(join(dir, name), tensors, { model, unit: unit.key, seed: String(seed) });
    this.units.push({
      model,
      unit: unit.key,
      label: unit.label,
      kind: unit.kind,
      layers: unit.layers,
      seed,
      file: `${sanitizeFileName(model)}/${name}`,
      params: params.names.map((n, i) => ({ name: n, shape: params.shapes[i]! })),
      ...(unit.extra ? { extra: unit.extra } : {}),
      ...(training ? { training } : {}),
    });
    writeJsonAtomic(join(this.rs.dir, 'probes', 'index.json'), { ...this.header, units: this.units });
  }

  get count(): number {
    return this.units.length;
  }
}

/** Options that change how a run goes, not what it computes: left out of the resume identity. */
const RUN_CONTROL = new Set(['out', 'force', 'resume', 'json', 'quiet', 'debug', 'layers', 'control', 'engine', 'backend', 'device', 'batchSize', 'jobs', 'offline', 'revision', 'model', 'data']);

/**
 * What an interrupted run and its rerun must share for finished units to be reused (issue 15
 * item 2): the model's weights, the sentences of every split, the seeds and every option that
 * changes a unit's numbers. Units (--layers) and --control are not in it: each (model, unit) is
 * its own checkpoint, so a rerun may add layers or the control.
 */
function runIdentity(opts: RunnerOptions, model: LoadedModel, raw: Record<SplitName, Corpus>, sentences: Record<SplitName, Sentence[]>, modelSeed: number): Record<string, unknown> {
  const options = Object.fromEntries(Object.entries(opts).filter(([k, v]) => !RUN_CONTROL.has(k) && v !== undefined && typeof v !== 'function'));
  return {
    model: { id: canonicalModelId(model.source), weightsSha256: model.source.weightsSha256, modelSeed },
    data: Object.fromEntries(SPLITS.map((k) => [k, { sha256: raw[k].sha256, ids: idsHash(sentences[k]) }])),
    options,
  };
}

/**
 * Units in flight, onnxruntime threads per probe and probes training at once (slots). Default:
 * one thread per probe and a probe per core; units start ahead of the free cores (one unit more
 * than the slots hold) so that a core left by a probe that stopped early takes the next unit's
 * probe. `--jobs N` sets the units, every probe of them training at once, the threads sharing
 * the cores.
 */
export function parallelism(probesPerUnit: number, jobs?: number, cores = availableParallelism()): { jobs: number; threads: number; slots: number } {
  const p = Math.max(1, probesPerUnit);
  if (jobs !== undefined) return { jobs, threads: Math.max(1, Math.floor(cores / (jobs * p))), slots: jobs * p };
  const slots = Math.max(1, cores);
  return { jobs: p > 1 ? Math.ceil(slots / p) + 1 : slots, threads: 1, slots };
}

/** At most `n` of the functions given run at once, started in call order. */
export function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((go) => waiting.push(go));
    running++;
    try {
      return await f();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Run a probe family end to end (see the file comment). */
export async function runProbe<O extends RunnerOptions>(family: ProbeFamily<O>, opts: O, ui: Ui): Promise<void> {
  const offline = isOffline(opts);
  const seeds = opts.seeds ?? 1;
  const modelSeed = opts.modelSeed ?? DEFAULT_MODEL_SEED;

  // Cheap checks first (issue 15): the units (e.g. --layers) against the config, then the data,
  // both before the model builds.
  const peeked = peekConfig(opts.model, opts.revision);
  if (peeked) family.units(opts, peeked);

  // 1. Data.
  const raw = await loadSplits(opts.data, {
    offline,
    ui,
    ...(opts.split !== undefined ? { split: opts.split } : {}),
    ...(opts.format !== undefined ? { format: opts.format } : {}),
    ...(opts.headRules !== undefined ? { headRules: opts.headRules } : {}),
    ...(opts.textColumn !== undefined ? { textColumn: opts.textColumn } : {}),
    ...(opts.labelColumn !== undefined ? { labelColumn: opts.labelColumn } : {}),
    ...(opts.lenient !== undefined ? { lenient: opts.lenient } : {}),
    ...(opts.trainSplit !== undefined ? { trainSplit: opts.trainSplit } : {}),
    ...(opts.devSplit !== undefined ? { devSplit: opts.devSplit } : {}),
    ...(opts.evalSplit !== undefined ? { evalSplit: opts.evalSplit } : {}),
  });
  const selected = Object.fromEntries(SPLITS.map((k) => [k, selectSentences(family as never, raw[k], ui, opts.limit)])) as Record<SplitName, { kept: Sentence[]; dropped: number }>;
  const sentences = Object.fromEntries(SPLITS.map((k) => [k, selected[k].kept])) as Record<SplitName, Sentence[]>;
  const corpora = Object.fromEntries(SPLITS.map((k) => [k, subCorpus(raw[k], sentences[k])])) as Record<SplitName, Corpus>;
  const dataId = opts.data;

  // 2. Models.
  const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: modelSeed, ui });
  const config: BertConfig = model.config;
  const request = family.activations(opts, config);
  const units = family.units(opts, config);
  if (units.length === 0) throw new InputError(`${family.command}: nothing to probe`, { expected: 'at least one unit (layer, head, …)', found: 'none', fix: 'check --layers' });
  if (new Set(units.map((u) => u.key)).size !== units.length) throw new Error(`${family.command}: unit keys are not unique`);

  const rs = await createResultSet({ command: family.command, modelId: model.source.id, dataId, out: opts.out, force: opts.force, resume: opts.resume, identity: runIdentity(opts, model, raw, sentences, modelSeed), seed: opts.seed, ui, json: opts.json });
  const models: LoadedModel[] = [model];
  if (opts.control === 'random') {
    if (model.source.randomInit) ui.warn('--control random: the model is already the random-init control; no second run');
    else if (opts.activations) ui.warn('--control random with --activations: the activations are given, so there is no control model to run; no second run');
    else models.push(await rs.stage('load control', () => loadModel(`random:${model.source.id}`, { revision: opts.revision, offline, seed: modelSeed, ui })));
  }
  const mainLabel = modelLabel(model);
  rs.setManifest({
    model: { id: model.source.id, canonicalId: canonicalModelId(model.source), path: model.source.path, revision: model.source.revision ?? null, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit, ...(model.source.randomInit ? { seed: modelSeed, randomInitReason: model.source.randomInitReason ?? 'random-init weights' } : {}) },
    ...(models[1] ? { control: { id: models[1].source.id, weightsSha256: models[1].source.weightsSha256, randomInit: true, seed: modelSeed, randomInitReason: '--control random: the random-init control of the same shape' } } : {}),
    seeds: { probe: opts.seed, count: seeds, probeSeeds: Array.from({ length: seeds }, (_, k) => opts.seed + k), model: modelSeed },
    data: {
      id: dataId,
      splits: Object.fromEntries(
        SPLITS.map((k) => [
          k,
          { id: raw[k].id, sha256: raw[k].sha256, files: raw[k].files, sentences: sentences[k].length, skipped: raw[k].skipped, dropped: selected[k].dropped, idsSha256: idsHash(sentences[k]), use: SPLIT_USE[k] },
        ]),
      ),
    },
    probe: { ...(family.describe?.(opts, config) ?? {}), units: units.map((u) => u.key), limit: opts.limit ?? null },
    activations: opts.activations ? { given: opts.activations } : { request },
  });

  // Families opt in to parallel units by declaring probesPerUnit (a family that runs the model
  // inside a unit keeps one unit at a time unless --jobs says otherwise).
  const cores = availableParallelism();
  const plan = family.probesPerUnit ? parallelism(family.probesPerUnit(opts), opts.jobs) : { jobs: opts.jobs ?? 1, threads: Math.max(1, Math.floor(cores / (opts.jobs ?? 1))), slots: opts.jobs ?? 1 };
  rs.setManifest({ parallelism: { unitsAtOnce: plan.jobs, probesAtOnce: plan.slots, onnxruntimeThreadsPerProbe: plan.threads, cores } });
  // The size of the work and how long it should take, said before it starts (issue 15 item 10).
  const fitsPerModel = units.length * seeds * (family.probesPerUnit?.(opts) ?? 1);
  const epochs = (opts as { maxEpochs?: number }).maxEpochs;
  ui.info(
    `work: ${SPLITS.map((k) => sentences[k].length).join('/')} train/dev/test sentences through ${models.length} model(s) of ${config.numHiddenLayers} layers; ` +
      `${units.length} unit(s) × ${seeds} seed(s) × ${models.length} model(s) = ${fitsPerModel * models.length} probe fits${epochs ? ` of up to ${epochs} epochs` : ''}`,
  );
  if (family.trainingWork) {
    const words = Object.fromEntries(SPLITS.map((k) => [k, sentences[k].map((x) => x.words.length)])) as Record<SplitName, number[]>;
    const work = family.trainingWork(opts, config, words);
    const toExtract = opts.activations ? [] : models.flatMap((m) => SPLITS.filter((k) => !storeComplete({ model: m, corpus: corpora[k], request, precision: opts.precision })).map((k) => corpora[k]));
    const extractFlops = toExtract.reduce((a, c) => a + extractionFlops(config, c.sentences.map((x) => x.words.length)), 0);
    const fits = work.fits * seeds * models.length;
    const est = estimateRun({
      gflopsPerCore: await measureMatmulGflops(),
      extractFlops,
      cached: toExtract.length === 0,
      training: { ...work, fits },
      slots: plan.slots,
    });
    ui.info(est.text);
    rs.setManifest({ estimate: { seconds: Math.round(est.seconds), maxSeconds: Math.round(est.maxSeconds), extractSeconds: Math.round(est.extractSeconds), trainSeconds: Math.round(est.trainSeconds) } });
    if (est.seconds > 600 && opts.limit === undefined) ui.info('for a first look try --limit 200 --layers 0,4,8,12 --max-epochs 5');
  }

  const metrics = family.metrics ?? [];
  const columns = resultColumns(family.columns, metrics, seeds);
  const descriptions: Record<string, string> = { ...family.columnDescriptions };
  if (seeds > 1) {
    for (const m of metrics) descriptions[`${m}_sd`] = `standard deviation (n − 1) of ${m} over the ${seeds} probe seeds (${m} is their mean)`;
    descriptions.seeds = 'probe seeds averaged (--seeds)';
  }
  const rows: Record<string, unknown>[] = [];
  const records: Record<string, unknown>[] = [];
  const saver = new ProbeSaver(rs, { family: family.command, options: family.describe?.(opts, config) ?? {}, data: dataId, seeds: Array.from({ length: seeds }, (_, k) => opts.seed + k) });
  const given = opts.activations ? activationDirs(opts.activations) : null;

  let baselineDone = !family.baseline;
  // Resuming an interrupted run (issue 15 item 2): finished units come from its checkpoints.
  const resumedBaseline = family.baseline ? rs.resumed('baseline') : undefined;
  if (resumedBaseline) {
    rows.unshift(...(resumedBaseline.rows as Record<string, unknown>[]));
    records.unshift(...(resumedBaseline.records as Record<string, unknown>[]));
    baselineDone = true;
  }
  const unitKey = (label: string, unit: Unit) => `${label} ${unit.key}`;
  for (const m of models) {
    const label = modelLabel(m);
    const todo = units.filter((u) => !rs.resumed(unitKey(label, u)));
    if (todo.length < units.length) ui.info(`${label}: ${units.length - todo.length} of ${units.length} unit(s) finished by the interrupted run are reused`);
    // 3. Activations (none needed when every unit of this model and the baseline are done).
    const sources = todo.length === 0 && baselineDone ? null : await rs.stage(`${given ? 'open activations' : 'extract'} ${label}`, async () => {
      const out = {} as Record<SplitName, ActivationSource>;
      if (given) {
        for (const k of SPLITS) {
          out[k] = await openActivations(given[k], corpora[k], {
            tokenizer: m.tokenizer,
            ...(opts.activationsFirstLayer !== undefined ? { firstLayer: opts.activationsFirstLayer } : {}),
            whole: { corpus: raw[k], positions: positionsIn(raw[k].sentences, sentences[k]) },
          });
          checkLayers(out[k], k, request, given[k].join(', '));
        }
        return out;
      }
      const engine = await createEngine(m, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
      rs.setManifest(m === model ? { engine: engine.kind, backend: engine.backend, precision: opts.precision } : { control: { engine: engine.kind, backend: engine.backend, precision: opts.precision } });
      try {
        for (const k of SPLITS) out[k] = await extractActivations({ model: m, engine, corpus: corpora[k], request, precision: opts.precision, batchSize: opts.batchSize, ui });
      } finally {
        await engine.dispose();
      }
      return out;
    });
    const splits = sources ? (Object.fromEntries(SPLITS.map((k) => [k, { name: k, sentences: sentences[k], activations: sources[k] } satisfies SplitData])) as Record<SplitName, SplitData>) : null;
    if (sources) {
      const described = Object.fromEntries(SPLITS.map((k) => [k, sources[k].description]));
      rs.setManifest(m === model ? { activations: { sources: described } } : { control: { activations: described } });
    }
    if (!baselineDone) {
      const b = await rs.stage('baseline', () => family.baseline!({ opts, splits: splits!, seed: opts.seed, seedIndex: 0, threads: plan.threads, ui }));
      rs.checkpoint('baseline', { rows: b.rows, records: b.records });
      rows.unshift(...b.rows);
      records.unshift(...b.records);
      baselineDone = true;
      rs.writeRows(rows as never, columns, descriptions);
    }

    // 4. Units × seeds.
    const limit = limiter(plan.jobs);
    const slot = limiter(plan.slots);
    const bar = ui.bar(label, units.length * seeds, `{bar} {value}/{total} ${seeds > 1 ? 'unit × seed runs' : 'units trained'} | ETA {eta_formatted}`);
    // Units train `jobs` at a time (issue 9 item 7: several probes in flight, onnxruntime's
    // threads split between them, beat one at a time with all threads; bench
    // structural-concurrency); rows, records and saved params are flushed in unit order. A unit an
    // interrupted run finished is taken from its checkpoint; a unit is checkpointed as soon as it
    // finishes (issue 15 item 2), whatever the order.
    const outcomes = units.map((unit) =>
      rs.resumed(unitKey(label, unit))
        ? Promise.resolve(null)
        : limit(async () => {
            const perSeed: UnitResult[] = [];
            for (let k = 0; k < seeds; k++) {
              const seed = opts.seed + k;
              const ctx: UnitContext<O> = { opts, unit, model: { label, id: m.source.id, randomInit: m.source.randomInit, tokenizer: m.tokenizer, loaded: m }, splits: splits!, seed, seedIndex: k, threads: plan.threads, slot, ui };
              perSeed.push(await rs.stage(`train ${label} ${unit.label}${seeds > 1 ? ` seed ${seed}` : ''}`, () => family.runUnit(ctx)));
              bar.increment(1);
            }
            rs.checkpoint(unitKey(label, unit), { rows: seeds > 1 ? aggregateSeeds(perSeed.map((r) => r.rows), metrics) : perSeed[0]!.rows, records: perSeed[0]!.records });
            return perSeed;
          }),
    );
    for (const o of outcomes) o.catch(() => {}); // surfaced in order below
    for (let u = 0; u < units.length; u++) {
      const perSeed = await outcomes[u]!;
      const unit = units[u]!;
      if (!perSeed) {
        const done = rs.resumed(unitKey(label, unit))!;
        saver.keep(label, unit.key);
        rows.push(...(done.rows as Record<string, unknown>[]));
        records.push(...(done.records as Record<string, unknown>[]));
        bar.increment(seeds);
        rs.writeRows(rows as never, columns, descriptions);
        continue;
      }
      perSeed.forEach((r, k) => {
        // Predictions of the first seed only: one record per (model, unit, sentence).
        if (k === 0) records.push(...r.records);
        if (r.params) saver.save(label, unit, opts.seed + k, seeds, r.params, r.training);
      });
      rows.push(...(seeds > 1 ? aggregateSeeds(perSeed.map((r) => r.rows), metrics) : perSeed[0]!.rows));
      rs.writeRows(rows as never, columns, descriptions);
    }
    bar.stop();
    if (sources) for (const k of SPLITS) await sources[k].close();
  }

  await family.dispose?.();

  // 5. Results.
  if (saver.count) rs.setManifest({ probes: { index: 'probes/index.json', files: saver.count } });
  rs.writeRows(rows as never, columns, descriptions);
  if (records.length) rs.writePredictions(records);
  family.figures?.(rs, rows, records, opts);
  // Every output names its model and whether (and why) its weights are random (issue 15 item 6).
  const summary = {
    ...family.summarize(rows, opts, { model: mainLabel, data: dataId }),
    random_init: model.source.randomInit,
    ...(model.source.randomInit ? { random_init_reason: model.source.randomInitReason ?? 'random-init weights' } : {}),
  };
  await rs.finish(seeds > 1 ? { ...summary, seeds } : summary, family.table ? { columns: [...family.table(seeds)], rows } : undefined);
}
