/**
 * The optimisation loop shared by the linear probes: Adam, learning rate ×0.1 when the dev loss
 * stops improving, early stopping, and the parameters of the best dev epoch kept. It follows
 * the regimen of Hewitt & Manning's reference trainer (github.com/john-hewitt/structural-probes,
 * structural-probes/regimen.py ProbeRegimen.train_until_convergence):
 * - torch.optim.Adam(lr=0.001) with PyTorch's defaults (β1 0.9, β2 0.999, ε 1e-8, bias-corrected);
 * - ReduceLROnPlateau(mode='min', factor=0.1, patience=0) stepped on the dev loss each epoch
 *   (its default threshold: an improvement must beat best·(1 − 1e-4));
 * - parameters saved when the dev loss beats the best by more than 1e-4; stop when 5 epochs in
 *   a row bring no such improvement; at most max_epochs (40);
 * - the training sentences shuffled every epoch, in batches (of 20 sentences for the probe).
 */
import type * as TfTypes from '@tensorflow/tfjs';
import type { CompiledProbe, Feed } from './probe-model.js';

/** The tfjs namespace in use (from selectTfjsBackend: the native binding or @tensorflow/tfjs). */
export type Tf = typeof import('@tensorflow/tfjs');
type Variable = TfTypes.Variable;
type Tensor = TfTypes.Tensor;
type Scalar = TfTypes.Scalar;

export interface TrainerOptions<B> {
  /** The trainable parameters; they end holding the best dev epoch's values. */
  variables: Variable[];
  /** Mean per-item loss of one batch (a scalar) and the number of items it averages over. */
  loss: (batch: B) => { loss: Scalar; count: number };
  /**
   * Optional: the loss with its gradients (in the order of `variables`) computed by the caller,
   * when it knows a cheaper way than taping `loss` (the structural probe does). Default: tfjs
   * autodiff of `loss`.
   */
  lossAndGrads?: (batch: B) => { loss: Scalar; grads: Tensor[]; count: number };
  trainBatches: (epoch: number) => B[];
  devBatches: B[];
  learningRate?: number;
  lrFactor?: number;
  maxEpochs?: number;
  /** Epochs without an improvement of minDelta before stopping (reference: 5). */
  patience?: number;
  minDelta?: number;
  onEpoch?: (e: EpochReport) => void;
}

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

/** trainProbe's options: the regimen of trainWithEarlyStopping on Float32Array parameters. */
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

/** Adam with PyTorch's update rule (torch.optim.Adam, no weight decay, no amsgrad). */
export class Adam {
  private m: Variable[];
  private v: Variable[];
  private t = 0;
  constructor(
    private readonly tf: Tf,
    private readonly vars: Variable[],
    public learningRate = 0.001,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    // tidy disposes the zero tensors; the variables (never tracked by tidy) stay.
    this.m = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
    this.v = tf.tidy(() => vars.map((x) => tf.variable(tf.zerosLike(x), false)));
  }

  /** One step with gradients in the order of the variables. */
  step(grads: Tensor[]): void {
    this.t++;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    const stepSize = this.learningRate / bc1;
    this.tf.tidy(() => {
      this.vars.forEach((x, k) => {
        const g = grads[k]!;
        const m = this.m[k]!.mul(this.beta1).add(g.mul(1 - this.beta1));
        const v = this.v[k]!.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        this.m[k]!.assign(m);
        this.v[k]!.assign(v);
        const denom = v.div(bc2).sqrt().add(this.eps);
        x.assign(x.sub(m.div(denom).mul(stepSize)));
      });
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** Mean loss over batches, weighted by each batch's item count, without gradients. */
export function meanLoss<B>(tf: Tf, batches: B[], loss: TrainerOptions<B>['loss']): number {
  let sum = 0;
  let count = 0;
  for (const b of batches) {
    const r = tf.tidy(() => {
      const { loss: l, count: c } = loss(b);
      return { value: l.dataSync()[0]!, count: c };
    });
    sum += r.value * r.count;
    count += r.count;
  }
  return count === 0 ? NaN : sum / count;
}

export function trainWithEarlyStopping<B>(tf: Tf, opts: TrainerOptions<B>): TrainResult {
  const lrFactor = opts.lrFactor ?? 0.1;
  const maxEpochs = opts.maxEpochs ?? 40;
  const patience = opts.patience ?? 5;
  const minDelta = opts.minDelta ?? 1e-4;
  const adam = new Adam(tf, opts.variables, opts.learningRate ?? 0.001);
  let best: Tensor[] = opts.variables.map((v) => tf.clone(v));
  let bestDevLoss = Infinity;
  let bestEpoch = -1;
  let plateauBest = Infinity; // ReduceLROnPlateau's own record (relative threshold 1e-4)
  const history: EpochReport[] = [];
  let epoch = 0;
  try {
    for (; epoch < maxEpochs; epoch++) {
      let trainSum = 0;
      let trainCount = 0;
      for (const batch of opts.trainBatches(epoch)) {
        let count = 0;
        let value: Scalar;
        let grads: Tensor[];
        if (opts.lossAndGrads) {
          const r = opts.lossAndGrads(batch);
          ({ loss: value, grads, count } = r);
        } else {
          const r = tf.variableGrads(() => {
            const l = opts.loss(batch);
            count = l.count;
            return l.loss;
          }, opts.variables);
          value = r.value;
          grads = opts.variables.map((v) => r.grads[v.name]!);
        }
        trainSum += value.dataSync()[0]! * count;
        trainCount += count;
        adam.step(grads);
        value.dispose();
        tf.dispose(grads);
      }
      const devLoss = meanLoss(tf, opts.devBatches, opts.loss);
      const lr = adam.learningRate;
      // ReduceLROnPlateau(patience=0): any epoch that is not a (relative) improvement cuts the rate.
      if (devLoss < plateauBest * (1 - 1e-4)) plateauBest = devLoss;
      else adam.learningRate = lr * lrFactor;
      const improved = devLoss < bestDevLoss - minDelta;
      history.push({ epoch, trainLoss: trainSum / trainCount, devLoss, learningRate: lr, improved });
      opts.onEpoch?.(history[history.length - 1]!);
      if (improved) {
        tf.dispose(best);
        best = opts.variables.map((v) => tf.clone(v));
        bestDevLoss = devLoss;
        bestEpoch = epoch;
      } else if (bestEpoch < epoch - (patience - 1)) {
        epoch++;
        break;
      }
    }
    opts.variables.forEach((v, k) => v.assign(best[k]!));
  } finally {
    tf.dispose(best);
    adam.dispose();
  }
  return { bestDevLoss, bestEpoch, epochs: epoch, history };
}
