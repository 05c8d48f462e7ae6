/**
 * The probe contract (issue 9 item 1; PLATFORM.md §5): a probe family is one file that declares
 * what it requires of the corpus, the activations it needs, its units, and how one unit is
 * trained and scored; src/probes/runner.ts does everything else for every family (model and
 * `--control random`, splits, `--limit`, extraction or `--activations`, units × `--seeds K`,
 * resume, results, saved probe parameters, manifest, report). A command is an option spec plus
 * `runProbe(family, opts, ui)`.
 *
 * Types only. Owner: `platform`.
 */
import type { Sentence } from '../corpus/types.js';
import type { ActivationRequest, ActivationSource } from '../extract/request.js';
import type { BertConfig, LoadedModel, Precision, Tokenizer } from '../model/types.js';
import type { ResultSet } from '../results/resultset.js';
import type { Ui } from '../util/ui.js';
import type { TrainingWork } from './estimate.js';

/** What a family requires of every sentence it keeps (the runner refuses a corpus with none). */
export type CorpusNeed = 'trees' | 'labels' | 'spans' | 'senses' | 'text';

export type SplitName = 'train' | 'dev' | 'test';

/**
 * One thing trained and scored on its own: a layer, a cumulative prefix of layers, all layers
 * mixed, one head, or the whole model. `key` is unique within a run, stable across runs (the
 * resume key and the file name under `<run>/probes/`), e.g. `layer.7`, `attn.8.10`, `mix`.
 */
export interface Unit {
  key: string;
  /** Written in the results' `layer`/`unit` column, e.g. `layer.7`. */
  label: string;
  /** Hidden-state indices (or attention layers for kind 'head') the unit reads. */
  layers: number[];
  kind: 'layer' | 'cumulative' | 'mix' | 'head' | 'model';
  extra?: Record<string, unknown>;
}

export interface SplitData {
  name: SplitName;
  /** The kept sentences, in order; sentence i of `activations` is sentences[i]. */
  sentences: Sentence[];
  activations: ActivationSource;
}

/** The options every probe command shares; a command's own options extend this. */
export interface RunnerOptions {
  // model (src/cli/common.ts addModelOptions)
  model?: string;
  revision?: string;
  engine: 'auto' | 'tfjs' | 'onnx';
  backend?: 'tensorflow' | 'wasm' | 'cpu';
  device: 'cpu' | 'cuda';
  /** Forward-pass precision (--precision; absent: fp32). */
  precision?: Precision;
  batchSize: number;
  offline?: boolean;
  /** Seed of every probe-side random choice (initialisation, shuffles, dropout). */
  seed: number;
  /** Seed of the random-init model's weights (default 42, whatever --seed is), so probe seeds vary alone. */
  modelSeed?: number;
  /** Train every probe K times (seeds seed, seed+1, …) and report mean and sd. Default 1. */
  seeds?: number;
  // data (src/cli/data-options.ts)
  data: string;
  split?: string;
  format?: string;
  headRules?: 'stanford' | 'collins';
  textColumn?: string;
  labelColumn?: string;
  lenient?: boolean;
  trainSplit?: string;
  devSplit?: string;
  evalSplit?: string;
  /** Only the first N kept sentences of each split. */
  limit?: number;
  /** Also probe the random-init control of the same shape. */
  control?: 'random';
  /** Units trained at once, all their probes together (default: a probe per core, src/probes/runner.ts parallelism). */
  jobs?: number;
  /** Features computed elsewhere (a store folder, several shard folders, or a .hdf5 file), per split. */
  activations?: string[];
  /** Our layer index of an .hdf5 file's first row (structural-probes' BERT files start at layer 1). */
  activationsFirstLayer?: number;
  // output
  out?: string;
  force?: boolean;
  /** --resume: continue an interrupted run (src/results/resultset.ts). */
  resume?: boolean;
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

export interface UnitContext<O> {
  opts: O;
  unit: Unit;
  /**
   * `label` is what rows and records carry (random-init controls are labelled as such);
   * `tokenizer` is the model's, for families that need the word pieces (heads: the [CLS], [SEP]
   * and punctuation pieces, word spans); `loaded` the model itself (layers: the word-piece
   * embeddings of Tenney's lexical layer 0).
   */
  model: { label: string; id: string; randomInit: boolean; tokenizer: Tokenizer; loaded?: LoadedModel };
  splits: Record<SplitName, SplitData>;
  /** The probe seed of this repetition: opts.seed + seedIndex. */
  seed: number;
  /** 0..K−1 under --seeds K. */
  seedIndex: number;
  /** onnxruntime intra-op threads each of this unit's probes should use (the runner trains several units at once). */
  threads: number;
  /**
   * Train one probe when a core is free: the runner's probe slots, shared by every unit in
   * flight, so a core left by a probe that stopped early takes the next unit's probe at once.
   * Absent: train now.
   */
  slot?: <T>(train: () => Promise<T>) => Promise<T>;
  ui: Ui;
}

export interface UnitResult {
  /** Result rows (the family's `columns`); the runner adds nothing to them but seed spread. */
  rows: Record<string, unknown>[];
  /** predictions.jsonl records. */
  records: Record<string, unknown>[];
  /** The trained parameters, saved as `<run>/probes/<model-label>/<unit-key>.safetensors`. */
  params?: { names: string[]; shapes: number[][]; values: Float32Array[] };
  /** How training went (e.g. per probe: epochs, best epoch, the dev-loss history), kept beside the params in probes/index.json. */
  training?: Record<string, unknown>;
}

export interface ProbeFamily<O extends RunnerOptions> {
  /** 'structural', 'layers', 'heads', ... (the results folder and manifest name it). */
  command: string;
  requires: CorpusNeed[];
  /** null keeps the sentence; else the reason it is skipped (counted and reported). */
  accept?(s: Sentence): string | null;
  activations(opts: O, config: BertConfig): ActivationRequest;
  units(opts: O, config: BertConfig): Unit[];
  /** A model-free baseline scored once (rows labelled by the family). */
  baseline?(ctx: Omit<UnitContext<O>, 'unit' | 'model'>): Promise<UnitResult>;
  runUnit(ctx: UnitContext<O>): Promise<UnitResult>;
  columns: readonly string[];
  columnDescriptions: Record<string, string>;
  /**
   * Numeric columns that are metrics: under --seeds K each is the mean over seeds and gets an
   * `<name>_sd` column beside it. Rows of one unit are matched across seeds by their position.
   */
  metrics?: readonly string[];
  /** summary.json. `run.model` is the main model's label (as in the rows), `run.data` the --data given. */
  summarize(rows: readonly Record<string, unknown>[], opts: O, run: { model: string; data: string }): Record<string, unknown>;
  /** Columns of the compact table in the report and on a TTY (default: the summary's scalars). */
  table?(seeds: number): readonly string[];
  figures?(rs: ResultSet, rows: readonly Record<string, unknown>[], records: readonly Record<string, unknown>[], opts: O): void;
  /**
   * Probes a unit trains at once (structural --probe both: 2). Declaring it lets the runner train
   * units in parallel (one onnxruntime thread per probe, as many probes training as cores, each
   * through ctx.slot); without it units run one at a time (with all threads) unless --jobs says
   * otherwise.
   */
  probesPerUnit?(opts: O): number;
  /**
   * The training work of the run for its estimate (src/probes/estimate.ts): probe fits of one
   * model and seed, and the floating-point operations of a typical fit, from the word counts
   * of each split.
   */
  trainingWork?(opts: O, config: BertConfig, words: Record<SplitName, readonly number[]>): TrainingWork;
  /** Called once when the run ends (e.g. to release compiled probes). */
  dispose?(): Promise<void>;
  /** Probe settings for manifest.json. */
  describe?(opts: O, config: BertConfig): Record<string, unknown>;
}
