/**
 * `bert-probe layers` (issue 10): Tenney, Das & Pavlick 2019, "BERT Rediscovers the Classical
 * NLP Pipeline" — at which layers each kind of linguistic information appears — as a probe
 * family on the runner. Per task (edge-targets.ts) and model, units:
 * - `single.layer.N`: the edge probe (edge-probe.ts) on hidden state N alone;
 * - `mix`: on the scalar mix of all layers; its weights s = softmax(w) and E_s[ℓ];
 * - `cumulative`: one probe per prefix 0..ℓ (jiant's bert_mix_k), P(ℓ), Δ(ℓ) and E_Δ[ℓ];
 * - with --control-task, `control.layer.N` (Hewitt & Liang, control-tasks.ts) and selectivity;
 * - with --mdl, `mdl.layer.N`: online codelength (mdl.ts).
 * Layer 0 is the lexical layer of the authors' code — LayerNorm(word-piece embeddings), no
 * position or segment embeddings (jiant bert/utils.py:117-130) — computed from the model's
 * weights; with --activations it is the features' own layer 0 (the manifest says which).
 * Optimisation (jiant defaults.conf:139-171, edgeprobe_bert.conf): Adam (AMSGrad) lr 1e-4, batches of 32
 * sentences, gradient clipping 5, lr × 0.5 after lr_patience 5 validations without a dev-F1
 * gain, stop after patience 20 or below lr 1e-6, best dev F1 kept — with step budgets sized for a
 * CPU (--max-steps, --val-interval) instead of 250k steps; the manifest lists every departure.
 */
import type { Sentence } from '../corpus/types.js';
import type { ActivationSource, PieceBatch } from '../extract/request.js';
import type { BertConfig, LoadedModel } from '../model/types.js';
import type { ResultSet } from '../results/resultset.js';
import { barChart, lineOverLayers } from '../results/figures.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import { mulberry32, shuffled } from '../util/random.js';
import type { CorpusNeed, ProbeFamily, RunnerOptions, SplitData, SplitName, Unit, UnitContext, UnitResult } from './contract.js';
import { controlLabels, labelDistribution } from './control-tasks.js';
import { edgeProbeDefinition, type EdgeProbeShape } from './edge-probe.js';
import { centerOfGravity, differentials, expectedLayer, microF1, mixWeights, perLabel, type Decisions } from './edge-scores.js';
import { isTwoSpan, labelInventory, scoredLabel, targetProblem, targetsOf, type EdgeTarget, type EdgeTask } from './edge-targets.js';
import { blockEnds, onlineCodelength } from './mdl.js';
import { compileProbe, initParams, type Feed } from './probe-model.js';
import { trainProbe, type Batch } from './trainer.js';

export type LayerMode = 'single' | 'mix' | 'cumulative';

export interface LayersOptions extends RunnerOptions {
  task: EdgeTask;
  tagset: 'upos' | 'xpos';
  layers: string;
  modes: LayerMode[];
  classifier: 'mlp' | 'linear';
  spanPooling: 'attn' | 'mean';
  controlTask?: boolean;
  mdl?: boolean;
  maxSteps: number;
  valInterval: number;
  batchSentences: number;
  /** Adam learning rate (the authors: 1e-4). */
  learningRate: number;
}

export const BASE_COLUMNS = ['model', 'task', 'mode', 'layer', 'f1', 'precision', 'recall', 'mix_weight', 'delta', 'examples', 'epochs', 'seconds'] as const;

export function layersColumns(opts: Pick<LayersOptions, 'controlTask' | 'mdl'>): string[] {
  return [...BASE_COLUMNS, ...(opts.controlTask ? ['selectivity'] : []), ...(opts.mdl ? ['codelength_bits', 'uniform_bits', 'compression'] : [])];
}

export const COLUMN_DESCRIPTIONS: Record<string, string> = {
  model: 'model id (random-init controls are labelled)',
  task: 'pos, ner, srl or deps',
  mode: 'single (one layer), mix (scalar mix of all layers; one row per layer), cumulative (mix of layers 0..ℓ), control (control task on one layer), mdl (online code on one layer)',
  layer: 'layer.N; layer.0 is the lexical layer (LayerNorm of the word-piece embeddings, as jiant)',
  f1: 'micro-F1 over (target, label) decisions at sigmoid ≥ 0.5, eval split (SRL: core and ARGM roles only); for mix rows the mix probe\'s F1',
  precision: 'micro precision over (target, label) decisions',
  recall: 'micro recall over (target, label) decisions',
  mix_weight: 'mix rows: s_ℓ = softmax(w)_ℓ of the learned scalar mix',
  delta: 'cumulative rows: Δ(ℓ) = P(ℓ) − P(ℓ−1), P(−1) = 0, not clipped',
  examples: 'targets scored (eval split)',
  epochs: 'validations run (each --val-interval steps)',
  seconds: 'training and scoring time',
  selectivity: 'control rows: task F1 − control-task F1 at this layer (Hewitt & Liang 2019)',
  codelength_bits: 'mdl rows: online codelength in bits (Voita & Titov 2020)',
  uniform_bits: 'mdl rows: uniform codelength N·log2 K in bits',
  compression: 'mdl rows: uniform / online codelength',
};

interface Prepared {
  labels: string[];
  /** Per split: targets per sentence (index = sentence in the split). */
  targets: Record<SplitName, EdgeTarget[][]>;
  controlMap?: Map<string, string>;
}

/** The lexical layer from a loaded model: LayerNorm(E[ids]) with the embeddings' LayerNorm. */
class LexicalLayer {
  private readonly E: Float32Array;
  private readonly gamma: Float32Array;
  private readonly beta: Float32Array;
  private readonly H: number;
  constructor(private readonly model: LoadedModel) {
    const get = (n: string) => {
      const t = model.weights.get(n);
      if (!t) throw new RuntimeFailure(`model lacks ${n} (needed for the lexical layer 0)`);
      return t.data;
    };
    this.E = get('embeddings.word_embeddings.weight');
    this.gamma = get('embeddings.LayerNorm.weight');
    this.beta = get('embeddings.LayerNorm.bias');
    this.H = model.config.hiddenSize;
  }

  /** [Σ pieces, H] for the sentences, checked against the stored piece counts. */
  pieces(sentences: readonly Sentence[], pieceCounts: readonly number[]): Float32Array {
    const H = this.H;
    const total = pieceCounts.reduce((a, b) => a + b, 0);
    const out = new Float32Array(total * H);
    let row = 0;
    sentences.forEach((s, k) => {
      const ids = this.model.tokenizer.encodeWords(s.words).ids;
      if (ids.length !== pieceCounts[k]) throw new RuntimeFailure(`lexical layer: ${s.id} has ${ids.length} pieces under the model's tokenizer but ${pieceCounts[k]} in the activations`);
      for (const id of ids) {
        const e = this.E.subarray(id * H, (id + 1) * H);
        let mean = 0;
        for (let h = 0; h < H; h++) mean += e[h]!;
        mean /= H;
        let v = 0;
        for (let h = 0; h < H; h++) v += (e[h]! - mean) ** 2;
        const inv = 1 / Math.sqrt(v / H + this.model.config.layerNormEps);
        for (let h = 0; h < H; h++) out[row * H + h] = (e[h]! - mean) * inv * this.gamma[h]! + this.beta[h]!;
        row++;
      }
    });
    return out;
  }
}

interface PlannedBatch {
  batch: Batch;
  /** (sentence, target index) of each target row. */
  rows: [number, number][];
}

/** The feeds of one batch of sentences at the unit's layers. */
async function buildBatch(split: SplitData, sentences: readonly number[], layers: readonly number[], mix: boolean, prep: Prepared, task: EdgeTask, lexical: LexicalLayer | null, loss: 'sigmoid' | 'softmax'): Promise<PlannedBatch> {
  const source: ActivationSource = split.activations;
  const H = source.hiddenSize;
  const reads: PieceBatch[] = [];
  for (const l of layers) {
    if (l === 0 && lexical) {
      const first = reads[0] ?? (await source.readPieces(layers.find((x) => x !== 0) ?? 0, sentences));
      reads.push({ ...first, vectors: lexical.pieces(sentences.map((s) => split.sentences[s]!), first.pieceCounts) });
    } else reads.push(await source.readPieces(l, sentences));
  }
  const { pieceCounts, wordSpans } = reads[0]!;
  const P = pieceCounts.reduce((a, b) => a + b, 0);
  let x: Feed;
  if (mix) {
    const data = new Float32Array(layers.length * P * H);
    reads.forEach((r, i) => data.set(r.vectors, i * P * H));
    x = { data, dims: [layers.length, P, H] };
  } else x = { data: reads[0]!.vectors, dims: [P, H] };
  const rows: [number, number][] = [];
  const spans1: number[][] = [];
  const spans2: number[][] = [];
  let offset = 0;
  const K = prep.labels.length;
  const yK: number[] = [];
  const y1: number[] = [];
  sentences.forEach((s, k) => {
    const ws = wordSpans[k]!;
    const pieceRange = (span: [number, number]) => {
      const a = ws[span[0]]![0];
      const b = ws[span[1] - 1]![1];
      return Array.from({ length: Math.max(1, b - a) }, (_, i) => offset + a + i);
    };
    prep.targets[split.name][s]!.forEach((t, ti) => {
      rows.push([s, ti]);
      spans1.push(pieceRange(t.span1));
      if (t.span2) spans2.push(pieceRange(t.span2));
      const labels = t.labels;
      if (loss === 'sigmoid') {
        const row = new Array<number>(K).fill(0);
        for (const l of labels) {
          const j = prep.labels.indexOf(l);
          if (j >= 0) row[j] = 1;
        }
        yK.push(...row);
      } else y1.push(Math.max(0, prep.labels.indexOf(labels[0]!)));
    });
    offset += pieceCounts[k]!;
  });
  const T = rows.length;
  const feeds: Record<string, Feed> = { x };
  const pack = (spans: number[][], k: number) => {
    const W = Math.max(1, ...spans.map((s) => s.length));
    const idx = new BigInt64Array(T * W);
    const inside = new Uint8Array(T * W);
    spans.forEach((s, t) => s.forEach((row, j) => {
      idx[t * W + j] = BigInt(row);
      inside[t * W + j] = 1;
    }));
    feeds[`idx${k}`] = { data: idx, dims: [T, W] };
    feeds[`in${k}`] = { data: inside, dims: [T, W] };
  };
  pack(spans1, 1);
  if (isTwoSpan(task)) pack(spans2, 2);
  feeds.y = loss === 'sigmoid' ? { data: Float32Array.from(yK), dims: [T, K] } : { data: BigInt64Array.from(y1.map(BigInt)), dims: [T] };
  return { batch: { feeds, count: T }, rows };
}

/** Sentences with at least one target, cut into batches (train: shuffled each epoch). */
function plan(prep: Prepared, split: SplitName, size: number, order?: readonly number[]): number[][] {
  const withTargets = (order ?? prep.targets[split].map((_, i) => i)).filter((i) => prep.targets[split][i]!.length > 0);
  const out: number[][] = [];
  for (let i = 0; i < withTargets.length; i += size) out.push(withTargets.slice(i, i + size));
  return out;
}

export class LayersFamily implements ProbeFamily<LayersOptions> {
  readonly command = 'layers';
  readonly requires: CorpusNeed[];
  readonly metrics = ['f1', 'precision', 'recall', 'mix_weight', 'delta', 'selectivity', 'codelength_bits', 'compression'];
  private prepared = new WeakMap<object, Prepared>();
  /** Single-layer F1 per (model, layer), for selectivity. */
  private singleF1 = new Map<string, number | null>();
  readonly columnDescriptions = COLUMN_DESCRIPTIONS;
  columns: readonly string[] = BASE_COLUMNS;

  constructor(private readonly opts0: LayersOptions) {
    this.columns = layersColumns(opts0);
    // The runner's wording for skipped sentences; accept() checks the task's own annotation.
    this.requires = [opts0.task === 'pos' ? 'labels' : opts0.task === 'deps' ? 'trees' : 'spans'];
  }

  accept(s: Sentence): string | null {
    return targetProblem(this.opts0.task, s, this.opts0.tagset);
  }

  activations(opts: LayersOptions, config: BertConfig) {
    return { layers: this.layersUsed(opts, config), attentionLayers: [], level: 'piece' as const };
  }

  private probeLayers(opts: LayersOptions, config: BertConfig): number[] {
    return parseLayerSpec(opts.layers, config.numHiddenLayers);
  }

  private layersUsed(opts: LayersOptions, config: BertConfig): number[] {
    const all = Array.from({ length: config.numHiddenLayers + 1 }, (_, i) => i);
    return opts.modes.some((m) => m !== 'single') ? all : this.probeLayers(opts, config);
  }

  units(opts: LayersOptions, config: BertConfig): Unit[] {
    const L = config.numHiddenLayers;
    const all = Array.from({ length: L + 1 }, (_, i) => i);
    const out: Unit[] = [];
    const chosen = this.probeLayers(opts, config);
    if (opts.modes.includes('single')) for (const l of chosen) out.push({ key: `single.${layerName(l)}`, label: layerName(l), layers: [l], kind: 'layer' });
    if (opts.controlTask) for (const l of chosen) out.push({ key: `control.${layerName(l)}`, label: layerName(l), layers: [l], kind: 'layer', extra: { control: true } });
    if (opts.modes.includes('mix')) out.push({ key: 'mix', label: 'mix', layers: all, kind: 'mix' });
    if (opts.modes.includes('cumulative')) out.push({ key: 'cumulative', label: 'cumulative', layers: all, kind: 'cumulative' });
    if (opts.mdl) for (const l of chosen) out.push({ key: `mdl.${layerName(l)}`, label: layerName(l), layers: [l], kind: 'layer', extra: { mdl: true } });
    return out;
  }

  private prepare(ctx: UnitContext<LayersOptions>): Prepared {
    const key = ctx.splits.train.sentences;
    let p = this.prepared.get(key);
    if (p) return p;
    const { task, tagset } = ctx.opts;
    const targets = {} as Record<SplitName, EdgeTarget[][]>;
    for (const k of ['train', 'dev', 'test'] as const) targets[k] = ctx.splits[k].sentences.map((s) => targetsOf(task, s, tagset));
    const labels = labelInventory(targets.train);
    if (labels.length === 0) throw new InputError(`no ${task} targets in the training split`, { expected: `sentences with ${task} annotation`, found: 'none', fix: `check --data (default for ${task}: see bert-probe layers --help)` });
    p = { labels, targets };
    this.prepared.set(key, p);
    return p;
  }

  /** Control-task targets: same spans, labels replaced by the word type's control label. */
  private controlPrepared(ctx: UnitContext<LayersOptions>, base: Prepared): Prepared {
    const dist = labelDistribution(base.targets.train.flat().map((t) => t.labels[0]!));
    const typeOf = (s: Sentence, t: EdgeTarget) => s.words[t.span1[0]]!;
    const types = (['train', 'dev', 'test'] as const).flatMap((k) => ctx.splits[k].sentences.flatMap((s, i) => base.targets[k][i]!.map((t) => typeOf(s, t))));
    const map = controlLabels(types, dist, ctx.seed);
    const targets = {} as Record<SplitName, EdgeTarget[][]>;
    for (const k of ['train', 'dev', 'test'] as const) {
      targets[k] = base.targets[k].map((ts, i) => ts.map((t) => ({ ...t, labels: [map.get(typeOf(ctx.splits[k].sentences[i]!, t))!] })));
    }
    return { labels: labelInventory(targets.train), targets, controlMap: map };
  }

  /** Tenney's lexical layer 0 when the model's own activations are probed; with --activations, the features' layer 0. */
  private lexical(ctx: UnitContext<LayersOptions>, layers: readonly number[]): LexicalLayer | null {
    return ctx.model.loaded && !ctx.opts.activations?.length && layers.includes(0) ? new LexicalLayer(ctx.model.loaded) : null;
  }

  private shape(ctx: UnitContext<LayersOptions>, prep: Prepared, mixLayers: number, loss: 'sigmoid' | 'softmax'): EdgeProbeShape {
    return { hidden: ctx.splits.train.activations.hiddenSize, mixLayers, twoSpan: isTwoSpan(ctx.opts.task), labels: prep.labels.length, classifier: ctx.opts.classifier, pooling: ctx.opts.spanPooling, loss };
  }

  /** Train one edge probe on `layers` (mixed when `mix`), select on dev F1, predict the eval split. */
  private async fit(ctx: UnitContext<LayersOptions>, prep: Prepared, layers: number[], mix: boolean, trainSentences?: number[]): Promise<{ params: Float32Array[]; names: string[]; shapes: number[][]; decisions: Decisions[]; records: Record<string, unknown>[]; epochs: number; history: unknown[] }> {
    const { opts } = ctx;
    const lexical = this.lexical(ctx, layers);
    const def = edgeProbeDefinition(this.shape(ctx, prep, mix ? layers.length : 0, 'sigmoid'));
    const probe = await compileProbe(def);
    try {
      const params = initParams(def, ctx.seed);
      const rand = mulberry32(ctx.seed ^ 0x9e3779b9);
      const size = opts.batchSentences;
      const base = trainSentences ?? prep.targets.train.map((_, i) => i);
      const perEpoch = Math.max(1, Math.ceil(base.length / size));
      let steps = 0;
      const gen = async function* (split: SplitData, batches: number[][], budget: boolean): AsyncIterable<Batch> {
        for (const b of batches) {
          if (budget && steps >= opts.maxSteps) return;
          if (budget) steps++;
          yield (await buildBatch(split, b, layers, mix, prep, opts.task, lexical, 'sigmoid')).batch;
        }
      };
      const keep = scoredLabel(opts.task);
      const devPlan = plan(prep, 'dev', size);
      const predictSplit = async (name: SplitName, p: Float32Array[]) => {
        const decisions: Decisions[] = [];
        const rows: [number, number][] = [];
        for (const b of plan(prep, name, size)) {
          const pb = await buildBatch(ctx.splits[name], b, layers, mix, prep, opts.task, lexical, 'sigmoid');
          const out = await probe.predict(p, pb.batch.feeds);
          const K = prep.labels.length;
          pb.rows.forEach(([s, ti], r) => {
            const predicted = prep.labels.filter((_, j) => out.probs!.data[r * K + j]! >= 0.5);
            decisions.push({ gold: prep.targets[name][s]![ti]!.labels, predicted });
            rows.push([s, ti]);
          });
        }
        return { decisions, rows };
      };
      const result = await trainProbe({
        probe,
        params,
        train: () => gen(ctx.splits.train, plan(prep, 'train', size, shuffled(base, rand)), true),
        dev: () => gen(ctx.splits.dev, devPlan, false),
        learningRate: opts.learningRate,
        lrFactor: 0.5,
        lrPatience: 5,
        patience: 20,
        stopLearningRate: 1e-6, amsgrad: true,
        gradClipNorm: 5,
        validateEvery: Math.min(opts.valInterval, perEpoch),
        maxEpochs: Math.max(1, Math.ceil(opts.maxSteps / perEpoch)),
        select: async (p) => microF1((await predictSplit('dev', p)).decisions, keep).f1 ?? 0,
        seed: ctx.seed,
      });
      const test = await predictSplit('test', params);
      const records = new Map<number, Record<string, unknown>>();
      test.rows.forEach(([s, ti], r) => {
        const sent = ctx.splits.test.sentences[s]!;
        let rec = records.get(s);
        if (!rec) records.set(s, (rec = { id: sent.id, words: sent.words, targets: [] as unknown[] }));
        const t = prep.targets.test[s]![ti]!;
        (rec.targets as unknown[]).push({ span1: t.span1, ...(t.span2 ? { span2: t.span2 } : {}), gold: t.labels, predicted: test.decisions[r]!.predicted });
      });
      return {
        params,
        names: def.params.map((p) => p.name),
        shapes: def.params.map((p) => p.shape),
        decisions: test.decisions,
        records: [...records.values()],
        epochs: result.epochs,
        history: result.history,
      };
    } finally {
      await probe.dispose();
    }
  }

  async runUnit(ctx: UnitContext<LayersOptions>): Promise<UnitResult> {
    const t0 = performance.now();
    const { opts, unit } = ctx;
    const base = this.prepare(ctx);
    const keep = scoredLabel(opts.task);
    const row = (mode: string, layer: string, f: ReturnType<typeof microF1>, examples: number, epochs: number, extra: Record<string, unknown> = {}) => ({
      model: ctx.model.label, task: opts.task, mode, layer, f1: f.f1, precision: f.precision, recall: f.recall, mix_weight: null, delta: null, examples, epochs, seconds: Math.round(performance.now() - t0) / 1000, ...extra,
    });
    const tag = (r: Record<string, unknown>, mode: string, layer: string) => ({ task: opts.task, model: ctx.model.label, mode, layer, ...r });

    if (unit.kind === 'layer' && unit.extra?.mdl) return this.runMdl(ctx, base, t0);

    if (unit.kind === 'layer') {
      const control = Boolean(unit.extra?.control);
      const prep = control ? this.controlPrepared(ctx, base) : base;
      const fit = await this.fit(ctx, prep, unit.layers, false);
      const f = microF1(fit.decisions, control ? () => true : keep);
      const mode = control ? 'control' : 'single';
      const extra: Record<string, unknown> = {};
      const key = `${ctx.model.label}|${unit.label}|${ctx.seed}`;
      if (control) {
        const task = this.singleF1.get(key);
        extra.selectivity = task !== undefined && task !== null && f.f1 !== null ? task - f.f1 : null;
      } else this.singleF1.set(key, f.f1);
      return {
        rows: [row(mode, unit.label, f, fit.decisions.length, fit.epochs, extra)],
        records: fit.records.map((r) => tag(r, mode, unit.label)),
        params: { names: fit.names, shapes: fit.shapes, values: fit.params },
        training: { history: fit.history, perLabel: Object.fromEntries(perLabel(fit.decisions, keep)) },
      };
    }

    if (unit.kind === 'mix') {
      const fit = await this.fit(ctx, base, unit.layers, true);
      const f = microF1(fit.decisions, keep);
      const w = fit.params[fit.names.indexOf('mix.weights')]!;
      const s = mixWeights([...w]);
      return {
        rows: unit.layers.map((l, i) => ({ ...row('mix', layerName(l), f, fit.decisions.length, fit.epochs), mix_weight: s[i] })),
        records: fit.records.map((r) => tag(r, 'mix', 'mix')),
        params: { names: fit.names, shapes: fit.shapes, values: fit.params },
        training: { history: fit.history, centerOfGravity: centerOfGravity(s), weights: s },
      };
    }

    // cumulative: a mix over layers 0..ℓ for every ℓ
    const scores: number[] = [];
    const rows: Record<string, unknown>[] = [];
    const records: Record<string, unknown>[] = [];
    for (const l of unit.layers) {
      const prefix = unit.layers.filter((x) => x <= l);
      const fit = await this.fit(ctx, base, prefix, true);
      const f = microF1(fit.decisions, keep);
      scores.push(f.f1 ?? 0);
      rows.push(row('cumulative', layerName(l), f, fit.decisions.length, fit.epochs));
      records.push(...fit.records.map((r) => tag(r, 'cumulative', layerName(l))));
      ctx.ui.debug(`${ctx.model.label} ${opts.task} cumulative 0..${l}: F1 ${f.f1}`);
    }
    const d = differentials(scores);
    rows.forEach((r, i) => (r.delta = d[i]));
    return { rows, records, training: { expectedLayer: expectedLayer(scores) } };
  }

  /** Online code (Voita & Titov): fresh softmax probes on growing prefixes of the shuffled train set. */
  private async runMdl(ctx: UnitContext<LayersOptions>, prep: Prepared, t0: number): Promise<UnitResult> {
    const { opts, unit } = ctx;
    const layer = unit.layers[0]!;
    const order = shuffled(prep.targets.train.map((_, i) => i).filter((i) => prep.targets.train[i]!.length > 0), mulberry32(ctx.seed ^ 0x51ed270b));
    // MDL counts targets; blocks are cut at sentence boundaries nearest the target fractions.
    const counts = order.map((i) => prep.targets.train[i]!.length);
    const N = counts.reduce((a, b) => a + b, 0);
    const targetEnds = blockEnds(N);
    const sentenceEnds: number[] = [];
    let acc = 0;
    let si = 0;
    for (const t of targetEnds) {
      while (si < order.length && acc + counts[si]! <= t) acc += counts[si++]!;
      sentenceEnds.push(Math.max(si, sentenceEnds[sentenceEnds.length - 1] ?? 0, 1));
    }
    const targetsUpTo = (s: number) => counts.slice(0, s).reduce((a, b) => a + b, 0);
    const lexical = this.lexical(ctx, [layer]);
    const def = edgeProbeDefinition(this.shape(ctx, prep, 0, 'softmax'));
    const blockNats: number[] = [];
    const probe = await compileProbe(def);
    try {
      for (let b = 0; b < sentenceEnds.length - 1; b++) {
        const trainIds = order.slice(0, sentenceEnds[b]!);
        const blockIds = order.slice(sentenceEnds[b]!, sentenceEnds[b + 1]!);
        const params = initParams(def, ctx.seed + b);
        const rand = mulberry32(ctx.seed ^ b);
        let steps = 0;
        const size = opts.batchSentences;
        const gen = async function* (ids: number[], budget: boolean): AsyncIterable<Batch> {
          for (let i = 0; i < ids.length; i += size) {
            if (budget && steps++ >= opts.maxSteps) return;
            yield (await buildBatch(ctx.splits.train, ids.slice(i, i + size), [layer], false, prep, opts.task, lexical, 'softmax')).batch;
          }
        };
        const perEpoch = Math.max(1, Math.ceil(trainIds.length / size));
        await trainProbe({
          probe, params, train: () => gen(shuffled(trainIds, rand), true), dev: () => gen(plan(prep, 'dev', size).flat(), false),
          learningRate: opts.learningRate, lrFactor: 0.5, lrPatience: 5, patience: 20, stopLearningRate: 1e-6, amsgrad: true, gradClipNorm: 5,
          validateEvery: Math.min(opts.valInterval, perEpoch), maxEpochs: Math.max(1, Math.ceil(opts.maxSteps / perEpoch)), seed: ctx.seed + b,
        });
        // summed cross-entropy (nats) of the next block's targets
        let nats = 0;
        for (let i = 0; i < blockIds.length; i += size) {
          const pb = await buildBatch(ctx.splits.train, blockIds.slice(i, i + size), [layer], false, prep, opts.task, lexical, 'softmax');
          const out = await probe.predict(params, pb.batch.feeds);
          const K = prep.labels.length;
          const y = pb.batch.feeds.y!.data as BigInt64Array;
          for (let r = 0; r < pb.rows.length; r++) nats -= out.log_probs!.data[r * K + Number(y[r])]!;
        }
        blockNats.push(nats);
      }
    } finally {
      await probe.dispose();
    }
    const ends = sentenceEnds.map(targetsUpTo);
    const c = onlineCodelength(N, prep.labels.length, ends, blockNats);
    return {
      rows: [{ model: ctx.model.label, task: opts.task, mode: 'mdl', layer: unit.label, f1: null, precision: null, recall: null, mix_weight: null, delta: null, examples: N, epochs: null, seconds: Math.round(performance.now() - t0) / 1000, codelength_bits: c.onlineBits, uniform_bits: c.uniformBits, compression: c.compression }],
      records: [],
      training: { blockEnds: ends, blockNats, labels: prep.labels.length, note: 'targets with several labels are coded by their first label' },
    };
  }

  summarize(rows: readonly Record<string, unknown>[], opts: LayersOptions): Record<string, unknown> {
    const models = [...new Set(rows.map((r) => String(r.model)))];
    const per: Record<string, unknown> = {};
    for (const m of models) {
      const mine = rows.filter((r) => r.model === m);
      const cum = mine.filter((r) => r.mode === 'cumulative').sort((a, b) => layerNum(a.layer) - layerNum(b.layer));
      const mix = mine.filter((r) => r.mode === 'mix').sort((a, b) => layerNum(a.layer) - layerNum(b.layer));
      const single = mine.filter((r) => r.mode === 'single' && typeof r.f1 === 'number');
      const best = single.reduce<Record<string, unknown> | null>((a, r) => (!a || (r.f1 as number) > (a.f1 as number) ? r : a), null);
      per[m] = {
        expected_layer: cum.length ? expectedLayer(cum.map((r) => (r.f1 as number) ?? 0)) : null,
        center_of_gravity: mix.length ? centerOfGravity(mix.map((r) => r.mix_weight as number)) : null,
        mix_f1: mix[0]?.f1 ?? null,
        best_single_layer: best ? { layer: best.layer, f1: best.f1 } : null,
        ...(opts.controlTask ? { selectivity: Object.fromEntries(mine.filter((r) => r.mode === 'control').map((r) => [r.layer, r.selectivity])) } : {}),
        ...(opts.mdl ? { compression: Object.fromEntries(mine.filter((r) => r.mode === 'mdl').map((r) => [r.layer, r.compression])) } : {}),
      };
    }
    return { command: 'layers', task: opts.task, models: per };
  }

  figures(rs: ResultSet, rows: readonly Record<string, unknown>[], _records: readonly Record<string, unknown>[], opts: LayersOptions): void {
    const main = rows.find((r) => !String(r.model).startsWith('random-init'))?.model ?? rows[0]?.model;
    const cum = rows.filter((r) => r.mode === 'cumulative' && r.model === main);
    const mix = rows.filter((r) => r.mode === 'mix' && r.model === main);
    if (cum.length || mix.length) {
      rs.addFigure(`${opts.task}-delta-and-mix`, barChart({
        bars: [...cum.map((r) => ({ label: String(r.layer), value: r.delta as number, group: 'Δ F1 (cumulative)' })), ...mix.map((r) => ({ label: String(r.layer), value: r.mix_weight as number, group: 'mix weight s_ℓ' }))],
        title: `${opts.task}: Δ(ℓ) and scalar-mix weights by layer (${main})`, yTitle: 'value',
      }), 'Tenney et al. 2019 Figure 1: the differential score Δ(ℓ) of the cumulative probes and the learned mix weights s_ℓ.');
    }
    const single = rows.filter((r) => r.mode === 'single');
    if (single.length) rs.addFigure(`${opts.task}-single-f1-by-layer`, lineOverLayers({ rows: single, y: 'f1', series: 'model', title: `${opts.task}: F1 of the probe on each single layer`, yTitle: 'micro-F1', yDomain: [0, 1] }), 'Single-layer probes; with --control random the random-init model beside.');
  }

  describe(opts: LayersOptions): Record<string, unknown> {
    return {
      task: opts.task, tagset: opts.task === 'pos' ? opts.tagset : undefined, modes: opts.modes, layers: opts.layers, classifier: opts.classifier, spanPooling: opts.spanPooling,
      layer0: 'lexical: LayerNorm(word-piece embeddings) without position/segment embeddings (jiant bert/utils.py:117-130) when the model is loaded; the activations\' layer 0 with --activations',
      optimisation: { adam: opts.learningRate, amsgrad: true, batchSentences: opts.batchSentences, gradClip: 5, lrFactor: 0.5, lrPatience: 5, patience: 20, stopBelowLr: 1e-6, selectOn: 'dev micro-F1', valInterval: opts.valInterval, maxSteps: opts.maxSteps },
      departures: [...(opts.learningRate !== 1e-4 ? [`learning rate ${opts.learningRate} (jiant: 1e-4)`] : []), `step budget ${opts.maxSteps} (jiant: 250k steps for POS/NER/SRL/deps), validation every ${opts.valInterval} steps on the whole dev split (jiant: every 1000 steps on the first 5000 dev examples)`, 'scores on the eval split (the paper\'s analysis reads dev)'],
      controlTask: opts.controlTask ? 'labels per word type drawn from the training label distribution (POS: Hewitt & Liang; deps: the same construction on relations, see docs/layers.md)' : undefined,
      mdl: opts.mdl ? 'online code, blocks 0.1…100 % cut at sentence boundaries, softmax edge probe, bits throughout' : undefined,
    };
  }
}

const layerNum = (v: unknown): number => Number(String(v).replace(/^layer\./, ''));
