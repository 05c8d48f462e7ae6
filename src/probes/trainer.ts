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
import { mulberry32 } from '../util/random.js';
import { maskDims, type CompiledProbe, type Feed } from './probe-model.js';

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
}

/** trainProbe's options (defaults: the structural-probes regimen above). */
export interface TrainOptions {
  probe: CompiledProbe;
  /** Updated in place; they end holding the best validation's values. */
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
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  /** amsgrad: the running maximum of v (torch's max_exp_avg_sq). */
  private readonly vMax: Float32Array[] | null;
  private t = 0;
  constructor(
    private readonly params: Float32Array[],
    public learningRate = 0.001,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
    amsgrad = false,
  ) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
    this.vMax = amsgrad ? params.map((p) => new Float32Array(p.length)) : null;
  }

  get steps(): number {
    return this.t;
  }

  step(grads: readonly Float32Array[]): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const stepSize = this.learningRate / (1 - b1 ** this.t);
    // ×(1/√(1−β2ᵗ)) rather than ÷√(1−β2ᵗ): ~20% faster here, equal to rounding.
    const invBc2Sqrt = 1 / Math.sqrt(1 - b2 ** this.t);
    const c1 = 1 - b1;
    const c2 = 1 - b2;
    this.params.forEach((p, k) => {
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (g.length !== p.length) throw new Error(`Adam: gradient ${k} has ${g.length} values for ${p.length} parameters`);
      const vMax = this.vMax?.[k];
      for (let i = 0; i < p.length; i++) {
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
    });
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

/** Mean batch loss over the dev batches, weighted by each batch's item count (eval graph). */
export async function meanProbeLoss(probe: CompiledProbe, params: Float32Array[], batches: AsyncIterable<Batch>): Promise<number> {
  let sum = 0;
  let count = 0;
  for await (const b of batches) {
    sum += (await probe.loss(params, b.feeds)) * b.count;
    count += b.count;
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
  const adam = new Float32Adam(params, opts.learningRate ?? 0.001, 0.9, 0.999, 1e-8, opts.amsgrad ?? false);
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

  const validate = async (): Promise<void> => {
    const round = history.length;
    const devLoss = await meanProbeLoss(probe, params, opts.dev());
    const metric = opts.select ? await opts.select(params) : -devLoss;
    const lr = adam.learningRate;
    // torch ReduceLROnPlateau (threshold_mode 'rel', threshold 1e-4, cooldown 0).
    const better = opts.select ? metric > plateauBest * (1 + 1e-4) : devLoss < plateauBest * (1 - 1e-4);
    if (better) {
      plateauBest = opts.select ? metric : devLoss;
      badRounds = 0;
    } else if (++badRounds > lrPatience) {
      // As the pre-issue-9 trainer: no eps test (torch skips a cut smaller than 1e-8, i.e.
      // below lr ≈ 1e-8, where the steps no longer move float32 parameters anyway).
      adam.learningRate = Math.max(lr * lrFactor, minLr);
      badRounds = 0;
    }
    const improved = metric > bestMetric + minDelta;
    const report: EpochReport = { epoch: round, trainLoss: trainCount ? trainSum / trainCount : NaN, devLoss, learningRate: lr, improved, step: adam.steps };
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
    if (opts.stopLearningRate !== undefined && adam.learningRate < opts.stopLearningRate) stop = true;
  };

  for (; epoch < maxEpochs && !stop; epoch++) {
    for await (const batch of opts.train(epoch)) {
      const feeds = probe.masks.length ? { ...batch.feeds, ...drawMasks(probe, batch.feeds, maskRand) } : batch.feeds;
      const { loss, grads } = await probe.lossAndGrad(params, feeds);
      trainSum += loss * batch.count;
      trainCount += batch.count;
      if (opts.gradClipNorm !== undefined) clipGradNorm(grads, opts.gradClipNorm);
      adam.step(grads);
      if (opts.validateEvery && adam.steps % opts.validateEvery === 0) {
        await validate();
        if (stop) break;
      }
    }
    if (!opts.validateEvery) await validate();
  }
  params.forEach((p, k) => p.set(best[k]!));
  return { bestDevLoss, bestEpoch: bestRound, epochs: opts.validateEvery ? history.length : epoch, history };
}
