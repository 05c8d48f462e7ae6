/**
 * A run-time estimate said before a run starts (issue 15 item 10): the work counted in
 * floating-point operations — the model's forward pass over the sentences not yet in the
 * activation store, and the family's probe training — divided by this machine's matrix speed,
 * measured on the spot (an onnxruntime MatMul of training shape, ~50 ms), and by the share of that
 * speed our own runs reach (EFFICIENCY below, with the command that measures it).
 */
import { availableParallelism } from 'node:os';
import type { BertConfig } from '../model/types.js';
import { AutodiffGraph } from './graph/graph.js';
import { GraphSession } from './graph/session.js';

/**
 * Share of the measured single-core MatMul speed a run sustains per core, from the structural
 * main job on the PTB sample (random-init bert-base, 2 cores; `npm run bench -- main-job`
 * prints the run's estimate against its measured time): extraction (the whole forward pass,
 * tokenizing, pooling and store writes included) and probe training (steps, Adam, dev loss and
 * scoring included).
 */
export const EFFICIENCY = { extract: 0.69, train: 0.63 };

/** The family's training work: probe fits and the operations of a typical one. */
export interface TrainingWork {
  fits: number;
  flopsPerFit: number;
  /** flopsPerFit if every fit ran to its epoch limit (an upper bound), when there is one. */
  maxFlopsPerFit?: number;
  /** What one fit is, after the count: e.g. "probe fits of ~20 epochs (at most 40)". */
  what: string;
}

/**
 * Floating-point operations of one BERT forward pass over a sequence of n pieces (with [CLS] and
 * [SEP]): per layer Q, K, V, output and the two feed-forward matrices (2·(4H² + 2HI) per
 * piece) and attention scores and mixing (4·n·H per piece).
 */
export function forwardFlops(config: BertConfig, n: number): number {
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  return config.numHiddenLayers * n * (2 * (4 * H * H + 2 * H * I) + 4 * n * H);
}

/** Pieces per word of BERT's English WordPiece vocabulary on the PTB sample (its store: 114,106 pieces for 94,084 words). */
export const PIECES_PER_WORD = 1.25;

/** Forward operations for sentences of these word counts (pieces estimated, plus [CLS] and [SEP]). */
export function extractionFlops(config: BertConfig, wordCounts: readonly number[]): number {
  let total = 0;
  for (const w of wordCounts) total += forwardFlops(config, Math.ceil(w * PIECES_PER_WORD) + 2);
  return total;
}

/**
 * This core's float32 MatMul speed in GFLOP/s: onnxruntime, one thread, a [512, 768] × [768, 768]
 * product, the best run of those in ~150 ms (a few runs alone read 107–138 GFLOP/s on one quiet
 * machine: the core's clock had not risen yet).
 */
export async function measureMatmulGflops(): Promise<number> {
  const [m, k, n] = [512, 768, 768];
  const g = new AutodiffGraph({ precision: 'float32', training: false });
  const a = g.input('a', [m, k]);
  const b = g.input('b', [k, n]);
  const session = await GraphSession.create(g.toOnnx({ c: g.matmul(a, b) }, 'matmul_speed'), { threads: 1 });
  try {
    const feeds = { a: { data: new Float32Array(m * k).fill(0.5), dims: [m, k] }, b: { data: new Float32Array(k * n).fill(0.25), dims: [k, n] } };
    let best = Infinity;
    const start = performance.now();
    for (let r = 0; r < 6 || (performance.now() - start < 150 && r < 100); r++) {
      const t = performance.now();
      await session.run(feeds);
      if (r > 0) best = Math.min(best, performance.now() - t);
    }
    return (2 * m * k * n) / (best / 1000) / 1e9;
  } finally {
    await session.dispose();
  }
}

export interface RunEstimate {
  seconds: number;
  maxSeconds: number;
  extractSeconds: number;
  trainSeconds: number;
  text: string;
}

function duration(s: number): string {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/**
 * The estimate: extraction on every core, training `slots` probes at once. `extractFlops` is 0
 * when the stores are cached.
 */
export function estimateRun(opts: { gflopsPerCore: number; extractFlops: number; cached: boolean; training: TrainingWork; slots: number; cores?: number }): RunEstimate {
  const cores = opts.cores ?? availableParallelism();
  const perCore = opts.gflopsPerCore * 1e9;
  const extractSeconds = opts.extractFlops / (perCore * EFFICIENCY.extract * cores);
  const parallel = Math.min(opts.slots, cores, opts.training.fits) || 1;
  const trainRate = perCore * EFFICIENCY.train * parallel;
  const trainSeconds = (opts.training.fits * opts.training.flopsPerFit) / trainRate;
  const maxTrain = (opts.training.fits * (opts.training.maxFlopsPerFit ?? opts.training.flopsPerFit)) / trainRate;
  const seconds = extractSeconds + trainSeconds;
  const maxSeconds = extractSeconds + maxTrain;
  const extract = opts.cached ? 'activations cached' : `extraction ≈ ${duration(extractSeconds)}`;
  const upTo = maxSeconds > seconds * 1.2 ? `, up to ${duration(maxSeconds)} if every probe runs to its epoch limit` : '';
  const text = `estimate: ≈ ${duration(seconds)} on this machine (${extract}; training ≈ ${duration(trainSeconds)}: ${opts.training.fits} ${opts.training.what}, ${parallel} at once${upTo}; matrix speed measured ${opts.gflopsPerCore.toFixed(0)} GFLOP/s per core)`;
  return { seconds, maxSeconds, extractSeconds, trainSeconds, text };
}
