/**
 * The optimisation loop of every probe (trainProbe): parameters in Float32Arrays, loss and
 * gradients from a CompiledProbe (probe-model.ts), Adam, learning rate ×0.1 when the dev loss
 * stops improving, early stopping, and the parameters of the best dev epoch kept. By default it
 * follows the regimen of Hewitt & Manning's reference trainer (github.com/john-hewitt/structural-probes,
 * structural-probes/regimen.py ProbeRegimen.train_until_convergence):
 * - torch.optim.Adam(lr=0.001) with PyTorch's defaults (β1 0.9, β2 0.999, ε 1e-8, bias-corrected);
 * - ReduceLROnPlateau(mode='min', factor=0.1, patience=0) stepped on the dev loss each epoch
 *   (its default threshold: an improvement must beat best·(1 − 1e-4));
 * - parameters saved when the dev loss beats the best by more than 1e-4; stop when 5 epochs in
 *   a row bring no such improvement; at most max_epochs (40);
 * - the training sentences shuffled every epoch, in batches (of 20 sentences for the probe).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../util/random.js';
import { WorkerClient, type WorkerAnswer, type WorkerHello } from '../util/worker-client.js';
import { ADAM_WASM_BASE64 } from './adam-wasm.js';
import { maskDims, type CompiledProbe, type CompileOptions, type Feed, type ProbeGraphs, type ProbeSessions } from './probe-model.js';

export interface EpochReport {
  /** 0-based epoch (with validateEvery: 0-based validation round). */
  epoch: number;
  trainLoss: number;
  devLoss: number;
  learningRate: number;
  improved: boolean;
  /** Optimiser steps taken so far (trainProbe). */
  step?: number;
  /** The select metric at this validation (trainProbe with `select`; higher is better). */
  metric?: number;
}

/** One batch for trainProbe: the probe's feeds and the number of items its loss averages over. */
export interface Batch {
  feeds: Record<string, Feed>;
  count: number;
  /**
   * The caller will not read these feeds again: a worker may take their buffers instead of a
   * copy (structured cloning 1.5 MB of vectors cost 2.2 ms a batch, moving them ~0).
   */
  transfer?: boolean;
  /**
   * Feeds whose buffers the batch owns whole and takes back once its step (or dev loss) is done:
   * moved to a worker and back, then handed to `give` to hold a later batch (util/buffer-pool.ts).
   */
  recycle?: { feeds: readonly string[]; give: (buffers: ArrayBuffer[]) => void };
}

/** trainProbe's options (defaults: the structural-probes regimen above). */
export interface TrainOptions {
  probe: CompiledProbe;
  /** Updated in place at each validation (onEpoch sees them); they end holding the best validation's values. */
  params: Float32Array[];
  /** The caller shuffles (the reference's per-epoch order). */
  train: (epoch: number) => AsyncIterable<Batch>;
  dev: () => AsyncIterable<Batch>;
  learningRate?: number;
  /** ReduceLROnPlateau factor (0.1) and patience (0). */
  lrFactor?: number;
  lrPatience?: number;
  minLearningRate?: number;
  /** Stop once the learning rate has fallen below this (jiant: 1e-6, trainer.py min_lr check); default never. */
  stopLearningRate?: number;
  /** torch.optim.Adam(amsgrad=True) (jiant's edge probing, per REFERENCES §3.1). */
  amsgrad?: boolean;
  /** Validations without an improvement of minDelta before stopping (5; minDelta 1e-4). */
  patience?: number;
  minDelta?: number;
  maxEpochs?: number;
  /** Clip the global gradient L2 norm to this (Tenney: 5); default no clipping. */
  gradClipNorm?: number;
  /** Validate every this many steps; default once per epoch. */
  validateEvery?: number;
  /** Higher is better (e.g. dev F1); default −(dev loss). */
  select?: (params: Float32Array[]) => Promise<number>;
  /** Seeds the dropout masks. */
  seed?: number;
  /**
   * Run the steps in a worker thread (default: yes, where the compiled worker exists, i.e. not
   * when run from TypeScript sources).
   * onnxruntime-node runs a session on the thread that calls it, so probes trained at once
   * from one thread take turns on one core; each in its own worker they use a core each.
   */
  worker?: boolean;
  onEpoch?: (e: EpochReport) => void;
}

export interface TrainResult {
  bestDevLoss: number;
  /** 0-based epoch whose parameters were kept. */
  bestEpoch: number;
  /** Epochs run. */
  epochs: number;
  history: EpochReport[];
}

/**
 * torch.optim.Adam's update on Float32Arrays (single-tensor path, no weight decay; amsgrad
 * optional; torch/optim/adam.py _single_tensor_adam):
 *   m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
 */
export class Float32Adam {
  /**
   * The arrays each step updates in place: those given, or with `ownParams` (where the SIMD loop
   * runs) views into its WebAssembly memory holding them, so a step copies only the gradient in.
   */
  readonly params: Float32Array[];
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  /** amsgrad: the running maximum of v (torch's max_exp_avg_sq). */
  private readonly vMax: Float32Array[] | null;
  /** The SIMD loop holding m and v (plain Adam where WebAssembly SIMD is available). */
  private readonly simd: SimdAdam | null;
  private t = 0;
  constructor(
    params: Float32Array[],
    public learningRate = 0.001,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
    amsgrad = false,
    ownParams = false,
  ) {
    this.simd = amsgrad ? null : SimdAdam.create(params.map((p) => p.length));
    this.params = this.simd && ownParams ? this.simd.adopt(params) : params;
    this.m = this.simd ? [] : params.map((p) => new Float32Array(p.length));
    this.v = this.simd ? [] : params.map((p) => new Float32Array(p.length));
    this.vMax = amsgrad ? params.map((p) => new Float32Array(p.length)) : null;
  }

  get steps(): number {
    return this.t;
  }

  /**
   * Where step() reads each gradient from (views into the SIMD loop's memory), or null without
   * the SIMD loop: a gradient written there (onnxruntime's pre-allocated outputs) is not copied.
   */
  get gradientSlots(): Float32Array[] | null {
    return this.simd ? this.params.map((p, k) => this.simd!.gradientView(k, p.length)) : null;
  }

  step(grads: readonly Float32Array[]): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const stepSize = this.learningRate / (1 - b1 ** this.t);
    const invBc2Sqrt = 1 / Math.sqrt(1 - b2 ** this.t);
    for (let k = 0; k < this.params.length; k++) {
      const p = this.params[k]!;
      const g = grads[k]!;
      if (g.length !== p.length) throw new Error(`Adam: gradient ${k} has ${g.length} values for ${p.length} parameters`);
      const vMax = this.vMax?.[k];
      if (this.simd) this.simd.update(k, p, g, b1, b2, stepSize, invBc2Sqrt, eps);
      else jsAdamUpdate(p, g, this.m[k]!, this.v[k]!, vMax ?? null, b1, b2, stepSize, invBc2Sqrt, eps);
    }
  }
}

/** The part of the WebAssembly JS API used here (lib ES2022 declares none of it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Memory: new (d: { initial: number }) => { buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Adam's element loop compiled from src/probes/adam.wat: float32 arithmetic four lanes at a time
 * (as torch computes in float32; the JS loop below rounds only when storing). 0.6 against 3.1 ms
 * a step for 768×768 parameters here, copies in and out included. Each parameter has a region of
 * p, g, m and v in one linear memory, padded to whole lanes (zeros, which stay zero).
 */
class SimdAdam {
  private constructor(
    private readonly f32: Float32Array,
    private readonly run: (p: number, g: number, m: number, v: number, bytes: number, b1: number, b2: number, c1: number, c2: number, step: number, inv: number, eps: number) => void,
    /** Per parameter: offset (in floats) of its p region and its padded length; g, m, v follow. */
    private readonly regions: { at: number; padded: number }[],
  ) {}

  static create(lengths: number[]): SimdAdam | null {
    const bytes = Buffer.from(ADAM_WASM_BASE64, 'base64');
    if (!wasm.validate(bytes)) return null;
    const regions: { at: number; padded: number }[] = [];
    let floats = 0;
    for (const n of lengths) {
      const padded = Math.ceil(n / 4) * 4;
      regions.push({ at: floats, padded });
      floats += 4 * padded;
    }
    const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil((floats * 4) / 65536)) });
    const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
    return new SimdAdam(new Float32Array(memory.buffer), instance.exports.adam as SimdAdam['run'], regions);
  }

  /** The parameters copied into their p regions; the views that now hold them. */
  adopt(params: Float32Array[]): Float32Array[] {
    return params.map((p, k) => {
      const view = this.f32.subarray(this.regions[k]!.at, this.regions[k]!.at + p.length);
      view.set(p);
      return view;
    });
  }

  /** Parameter k's g region (its first `length` values). */
  gradientView(k: number, length: number): Float32Array {
    const { at, padded } = this.regions[k]!;
    return this.f32.subarray(at + padded, at + padded + length);
  }

  update(k: number, p: Float32Array, g: Float32Array, b1: number, b2: number, stepSize: number, invBc2Sqrt: number, eps: number): void {
    const { at, padded } = this.regions[k]!;
    const own = p.buffer === this.f32.buffer && p.byteOffset === at * 4;
    if (!own) this.f32.set(p, at);
    if (g.buffer !== this.f32.buffer || g.byteOffset !== (at + padded) * 4) this.f32.set(g, at + padded);
    this.run(at * 4, (at + padded) * 4, (at + 2 * padded) * 4, (at + 3 * padded) * 4, padded * 4, b1, b2, 1 - b1, 1 - b2, stepSize, invBc2Sqrt, eps);
    if (!own) p.set(this.f32.subarray(at, at + p.length));
  }
}

// The JS element loop: a plain function of typed arrays (a loop in a closure over the optimiser's
// fields ran 2× slower). Plain Adam takes SimdAdam where WebAssembly SIMD is available; this loop
// is amsgrad's and the fallback. ×(1/√(1−β2ᵗ)) rather than ÷√(1−β2ᵗ): faster, equal to rounding.
function jsAdamUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vMax: Float32Array | null, b1: number, b2: number, stepSize: number, invBc2Sqrt: number, eps: number): void {
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = b1 * m[i]! + c1 * gi;
    const vi = b2 * v[i]! + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let vd = vi;
    if (vMax) {
      // amsgrad (torch): the denominator from the largest v so far; v stays the running average.
      vd = Math.max(vMax[i]!, Math.fround(vi));
      vMax[i] = vd;
    }
    p[i] = p[i]! - (stepSize * mi) / (Math.sqrt(vd) * invBc2Sqrt + eps);
  }
}

/** torch.nn.utils.clip_grad_norm_: scale every gradient by max/(‖g‖₂ + 1e-6) when that is < 1. */
export function clipGradNorm(grads: Float32Array[], maxNorm: number): number {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return norm;
}

/** The dropout masks a train batch needs, drawn from `rand` (entries 0 or 1/(1−p)). */
function drawMasks(probe: CompiledProbe, feeds: Record<string, Feed>, rand: () => number): Record<string, Feed> {
  const out: Record<string, Feed> = {};
  for (const m of probe.masks) {
    const dims = maskDims(probe.definition, m, feeds);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    const keep = 1 / (1 - m.p);
    for (let i = 0; i < data.length; i++) data[i] = rand() < m.p ? 0 : keep;
    out[m.name] = { data, dims };
  }
  return out;
}

/** A batch's loss, and the buffers of the feeds its caller asked back (`giveBack`). */
export interface StepAnswer {
  loss: number;
  buffers: ArrayBuffer[];
}

/**
 * Where a probe's parameters live and its optimiser steps run: in this thread (LocalStepper) or
 * in a worker thread (WorkerStepper), the same code either way. `transfer`: the feeds' whole
 * buffers may move to the worker (Batch.transfer); `giveBack`: feeds whose buffers come back
 * (Batch.recycle), moved whole both ways.
 */
export interface ParamStepper {
  /** Steps that may be queued before the oldest must finish (a worker takes the next batch while it runs one). */
  readonly depth: number;
  /** Loss and gradients of one batch, clipped when asked, then one Adam step at `learningRate`. */
  step(feeds: Record<string, Feed>, learningRate: number, transfer?: boolean, giveBack?: readonly string[]): Promise<StepAnswer>;
  /** The loss of a batch (eval graph) at the current parameters. */
  loss(feeds: Record<string, Feed>, transfer?: boolean, giveBack?: readonly string[]): Promise<StepAnswer>;
  /** The current parameters (the live arrays in this thread, copies from a worker). */
  values(): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

export interface StepperOptions {
  amsgrad: boolean;
  gradClipNorm?: number;
}

export class LocalStepper implements ParamStepper {
  readonly depth = 1;
  private readonly adam: Float32Adam;
  constructor(
    private readonly probe: ProbeSessions,
    params: Float32Array[],
    private readonly opts: StepperOptions,
  ) {
    // The optimiser keeps the live parameters (in its SIMD memory where it can); values() hands
    // them out, and trainProbe copies them into the caller's arrays at each validation.
    this.adam = new Float32Adam(params, 0.001, 0.9, 0.999, 1e-8, opts.amsgrad, true);
    this.gradientSlots = this.adam.gradientSlots ?? undefined;
  }

  /** onnxruntime writes the gradients straight into the optimiser's memory (where it has one). */
  private readonly gradientSlots: Float32Array[] | undefined;

  async step(feeds: Record<string, Feed>, learningRate: number, _transfer?: boolean, giveBack: readonly string[] = []): Promise<StepAnswer> {
    const { loss, grads } = await this.probe.lossAndGrad(this.adam.params, feeds, this.gradientSlots);
    if (this.opts.gradClipNorm !== undefined) clipGradNorm(grads, this.opts.gradClipNorm);
    this.adam.learningRate = learningRate;
    this.adam.step(grads);
    return { loss, buffers: feedBuffers(feeds, giveBack) };
  }

  async loss(feeds: Record<string, Feed>, _transfer?: boolean, giveBack: readonly string[] = []): Promise<StepAnswer> {
    return { loss: await this.probe.loss(this.adam.params, feeds), buffers: feedBuffers(feeds, giveBack) };
  }

  async values(): Promise<Float32Array[]> {
    return this.adam.params;
  }

  async dispose(): Promise<void> {}
}

/** Messages to and from src/probes/train-worker.ts. */
export interface StepperInit {
  graphs: ProbeGraphs;
  options: CompileOptions;
  params: Float32Array[];
  stepper: StepperOptions;
}
type StepperRequestBody = { op: 'step'; feeds: Record<string, Feed>; learningRate: number; giveBack: readonly string[] } | { op: 'loss'; feeds: Record<string, Feed>; giveBack: readonly string[] } | { op: 'values' };
export type StepperRequest = { id: number } & StepperRequestBody;
/** What train-worker.ts posts: its hello, then an answer per request. */
export type StepperReply = WorkerHello | WorkerAnswer<{ loss?: number; buffers?: ArrayBuffer[]; values?: Float32Array[] }>;

const WORKER_URL = ((): URL | null => {
  if (!import.meta.url.endsWith('.js')) return null;
  const url = new URL('./train-worker.js', import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : null;
})();

/** Whether trainProbe can run steps in a worker thread here (the compiled worker file exists). */
export const workerAvailable = WORKER_URL !== null;

/** The buffers of these feeds that a view covers whole (a view into a larger buffer is copied instead). */
function wholeBuffers(feeds: Record<string, Feed>): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const f of Object.values(feeds)) {
    const b = f.data.buffer;
    if (b instanceof ArrayBuffer && f.data.byteOffset === 0 && f.data.byteLength === b.byteLength) out.add(b);
  }
  return [...out];
}

/** The buffers of the named feeds (each once). */
function feedBuffers(feeds: Record<string, Feed>, names: readonly string[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const n of names) {
    const b = feeds[n]?.data.buffer;
    if (b instanceof ArrayBuffer) out.add(b);
  }
  return [...out];
}

/** A LocalStepper in a worker thread (src/probes/train-worker.ts), the parameters copied in. */
export class WorkerStepper implements ParamStepper {
  readonly depth = 2;

  private constructor(private readonly client: WorkerClient<{ loss?: number; buffers?: ArrayBuffer[]; values?: Float32Array[] }>) {}

  static async start(probe: CompiledProbe, params: Float32Array[], opts: StepperOptions): Promise<WorkerStepper> {
    if (!WORKER_URL) throw new Error('the probe training worker (train-worker.js) is missing: build with `npm run build`');
    const init: StepperInit = { graphs: probe.graphs, options: probe.options, params, stepper: opts };
    return new WorkerStepper(await WorkerClient.start(WORKER_URL, init, 'probe training'));
  }

  private async answer(req: StepperRequestBody & { feeds: Record<string, Feed>; giveBack: readonly string[] }, transfer = false): Promise<StepAnswer> {
    const moved = new Set([...(transfer ? wholeBuffers(req.feeds) : []), ...feedBuffers(req.feeds, req.giveBack)]);
    const a = await this.client.call(req, [...moved]);
    return { loss: a.loss!, buffers: a.buffers ?? [] };
  }

  step(feeds: Record<string, Feed>, learningRate: number, transfer?: boolean, giveBack: readonly string[] = []): Promise<StepAnswer> {
    return this.answer({ op: 'step', feeds, learningRate, giveBack }, transfer);
  }

  loss(feeds: Record<string, Feed>, transfer?: boolean, giveBack: readonly string[] = []): Promise<StepAnswer> {
    return this.answer({ op: 'loss', feeds, giveBack }, transfer);
  }

  async values(): Promise<Float32Array[]> {
    return (await this.client.call({ op: 'values' })).values!;
  }

  dispose(): Promise<void> {
    return this.client.terminate();
  }
}

/**
 * Requests to a stepper, at most `depth` unfinished, answered in the order sent (a worker takes
 * the next batch while it runs one). A failure surfaces at the next add() or drain().
 */
class StepperQueue {
  private inflight: Promise<void>[] = [];
  constructor(private readonly depth: number) {}

  /** Queue a request, first waiting for the oldest when `depth` are unfinished. */
  async add(request: () => Promise<void>): Promise<void> {
    if (this.inflight.length >= this.depth) await this.inflight.shift();
    const done = request();
    done.catch(() => {}); // awaited later; a failure must not count as unhandled meanwhile
    this.inflight.push(done);
  }

  /** Wait for every queued request (throws the first failure). */
  async drain(): Promise<void> {
    const all = this.inflight;
    this.inflight = [];
    await Promise.all(all);
  }

  /** Wait for every queued request, failed or not (cleanup). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inflight);
  }
}

/**
 * Mean batch loss over the dev batches, weighted by each batch's item count (eval graph), queued
 * like training steps; the answers come in order, so the sum is the same.
 */
async function meanStepperLoss(stepper: Pick<ParamStepper, 'loss' | 'depth'>, batches: AsyncIterable<Batch>): Promise<number> {
  let sum = 0;
  let count = 0;
  const queue = new StepperQueue(stepper.depth);
  try {
    for await (const b of batches) {
      await queue.add(async () => {
        const a = await stepper.loss(b.feeds, b.transfer, b.recycle?.feeds);
        b.recycle?.give(a.buffers);
        sum += a.loss * b.count;
        count += b.count;
      });
    }
    await queue.drain();
  } finally {
    await queue.settle();
  }
  return count === 0 ? NaN : sum / count;
}

/**
 * Train a compiled probe: the regimen above (structural-probes' regimen.py; before issue 9 the
 * tfjs trainWithEarlyStopping, whose dev-loss trajectories test/structural-runner.test.ts
 * reproduces) on Float32Array parameters, batches as async iterables.
 * - Each train batch: loss and gradients from the probe's train graph (dropout masks drawn from
 *   `seed`), optional clipping of the global gradient norm, one Adam step.
 * - Validation (each epoch, or every `validateEvery` steps): the dev loss (eval graph, weighted
 *   by batch counts) and the select metric (default −dev loss).
 * - ReduceLROnPlateau(factor 0.1, patience 0 by default, threshold 1e-4 relative, min_lr)
 *   on the dev loss (mode 'min'), or on the select metric (mode 'max') when one is given.
 * - Parameters saved when the metric beats the best by more than minDelta; stop once `patience`
 *   validations bring no such improvement, once the rate falls below `stopLearningRate`, or after
 *   maxEpochs; the best parameters restored.
 */
export async function trainProbe(opts: TrainOptions): Promise<TrainResult> {
  const { probe, params } = opts;
  const lrFactor = opts.lrFactor ?? 0.1;
  const lrPatience = opts.lrPatience ?? 0;
  const minLr = opts.minLearningRate ?? 0;
  const maxEpochs = opts.maxEpochs ?? 40;
  const patience = opts.patience ?? 5;
  const minDelta = opts.minDelta ?? 1e-4;
  const stepperOpts: StepperOptions = { amsgrad: opts.amsgrad ?? false, ...(opts.gradClipNorm !== undefined ? { gradClipNorm: opts.gradClipNorm } : {}) };
  const stepper: ParamStepper = (opts.worker ?? workerAvailable) ? await WorkerStepper.start(probe, params, stepperOpts) : new LocalStepper(probe, params, stepperOpts);
  let learningRate = opts.learningRate ?? 0.001;
  let steps = 0;
  const maskRand = mulberry32(opts.seed ?? 0);
  let best = params.map((p) => p.slice());
  let bestMetric = -Infinity;
  let bestDevLoss = Infinity;
  let bestRound = -1;
  let plateauBest = opts.select ? -Infinity : Infinity;
  let badRounds = 0;
  const history: EpochReport[] = [];
  let trainSum = 0;
  let trainCount = 0;
  let stop = false;
  let epoch = 0;
  // Steps queued and not yet finished, in order.
  const queue = new StepperQueue(stepper.depth);

  const validate = async (): Promise<void> => {
    await queue.drain();
    const round = history.length;
    const devLoss = await meanStepperLoss(stepper, opts.dev());
    // The caller's arrays hold the parameters of the latest validation (a worker's are copied back).
    const current = await stepper.values();
    if (current !== params) params.forEach((p, k) => p.set(current[k]!));
    const metric = opts.select ? await opts.select(params) : -devLoss;
    const lr = learningRate;
    // torch ReduceLROnPlateau (threshold_mode 'rel', threshold 1e-4, cooldown 0).
    const better = opts.select ? metric > plateauBest * (1 + 1e-4) : devLoss < plateauBest * (1 - 1e-4);
    if (better) {
      plateauBest = opts.select ? metric : devLoss;
      badRounds = 0;
    } else if (++badRounds > lrPatience) {
      // As the pre-issue-9 trainer: no eps test (torch skips a cut smaller than 1e-8, i.e.
      // below lr ≈ 1e-8, where the steps no longer move float32 parameters anyway).
      learningRate = Math.max(lr * lrFactor, minLr);
      badRounds = 0;
    }
    const improved = metric > bestMetric + minDelta;
    const report: EpochReport = { epoch: round, trainLoss: trainCount ? trainSum / trainCount : NaN, devLoss, learningRate: lr, improved, step: steps };
    if (opts.select) report.metric = metric;
    history.push(report);
    opts.onEpoch?.(report);
    trainSum = 0;
    trainCount = 0;
    if (improved) {
      best = params.map((p) => p.slice());
      bestMetric = metric;
      bestDevLoss = devLoss;
      bestRound = round;
    } else if (bestRound < round - (patience - 1)) stop = true;
    if (opts.stopLearningRate !== undefined && learningRate < opts.stopLearningRate) stop = true;
  };

  try {
    for (; epoch < maxEpochs && !stop; epoch++) {
      for await (const batch of opts.train(epoch)) {
        const feeds = probe.masks.length ? { ...batch.feeds, ...drawMasks(probe, batch.feeds, maskRand) } : batch.feeds;
        await queue.add(async () => {
          const a = await stepper.step(feeds, learningRate, batch.transfer, batch.recycle?.feeds);
          batch.recycle?.give(a.buffers);
          trainSum += a.loss * batch.count;
          trainCount += batch.count;
        });
        steps++;
        if (opts.validateEvery && steps % opts.validateEvery === 0) {
          await validate();
          if (stop) break;
        }
      }
      if (!opts.validateEvery) await validate();
    }
  } finally {
    await queue.settle();
    await stepper.dispose();
  }
  params.forEach((p, k) => p.set(best[k]!));
  return { bestDevLoss, bestEpoch: bestRound, epochs: opts.validateEvery ? history.length : epoch, history };
}
