/**
 * Issue 9 item 7 (runner half): does training several structural probes at once (both kinds of
 * a layer, or several layers) beat training them one after another? The distance and depth
 * probes of 768-d random vectors on the PTB sample's sentences (as bench/structural.ts), a few
 * epochs each, timed one after another and then concurrently (Promise.all over trainProbe loops,
 * onnxruntime threads split between them), in the same process and run. Reports probe-epochs per
 * second of each schedule, as a ratio to one-at-a-time, with the load average.
 *
 *   npm run bench structural-concurrency
 *   BENCH_CONC_LIMIT=400 (train sentences)  BENCH_CONC_EPOCHS=2
 */
import { availableParallelism, loadavg } from 'node:os';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { memorySource } from '../src/extract/memory-source.js';
import type { SplitData } from '../src/probes/contract.js';
import { disposeCompiledStructural, fitStructural, type StructuralKind } from '../src/probes/structural-train.js';
import { treeProblem } from '../src/probes/trees.js';
import { mulberry32 } from '../src/util/random.js';

const HIDDEN = 768;
const LIMIT = Number(process.env.BENCH_CONC_LIMIT ?? 400);
const EPOCHS = Number(process.env.BENCH_CONC_EPOCHS ?? 2);

function split(name: SplitData['name'], all: Sentence[], limit: number, rand: () => number, layers: number[]): SplitData {
  const sentences = all.filter((s) => s.heads && !treeProblem(s.heads)).slice(0, limit);
  const byLayer = new Map<number, Float32Array[]>();
  for (const l of layers) byLayer.set(l, sentences.map((s) => new Float32Array(s.words.length * HIDDEN).map(() => rand() * 2 - 1)));
  return { name, sentences, activations: memorySource(byLayer, HIDDEN) };
}

export async function benchStructuralConcurrency(): Promise<void> {
  const splits = await loadSplits('ptb', { offline: true });
  const rand = mulberry32(1);
  const layers = [0, 1];
  const train = split('train', splits.train.sentences, LIMIT, rand, layers);
  const dev = split('dev', splits.dev.sentences, Math.ceil(LIMIT / 8), rand, layers);
  const cores = availableParallelism();
  const fit = (kind: StructuralKind, layer: number, threads?: number) =>
    fitStructural({ kind, layer, train, dev, hidden: HIDDEN, rank: HIDDEN, seed: 1, maxEpochs: EPOCHS, batchSize: 20, ...(threads !== undefined ? { threads } : {}) });
  const jobs: [StructuralKind, number][] = [['distance', 0], ['depth', 0], ['distance', 1], ['depth', 1]];
  // Warm up: compile the sessions once.
  await fit('distance', 0).then(() => fit('depth', 0));
  const schedules: [string, () => Promise<unknown>][] = [
    ['one at a time (all threads)', async () => {
      for (const [k, l] of jobs) await fit(k, l);
    }],
    ['2 at a time (threads split)', async () => {
      for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map(([k, l]) => fit(k, l, Math.max(1, Math.floor(cores / 2)))));
    }],
    ['2 at a time (all threads each)', async () => {
      for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map(([k, l]) => fit(k, l)));
    }],
    ['4 at once (1 thread each)', async () => {
      await Promise.all(jobs.map(([k, l]) => fit(k, l, 1)));
    }],
  ];
  let base = 0;
  console.log(`\nstructural concurrency: ${jobs.length} probes × ${EPOCHS} epochs, ${train.sentences.length} train / ${dev.sentences.length} dev sentences, ${HIDDEN}-d, rank ${HIDDEN}, ${cores} cores`);
  for (const [name, run] of schedules) {
    const t0 = performance.now();
    await run();
    const s = (performance.now() - t0) / 1000;
    if (!base) base = s;
    console.log(`  ${name.padEnd(32)} ${s.toFixed(1)} s  (${(base / s).toFixed(2)}× one at a time)  load ${loadavg()[0]!.toFixed(1)}`);
  }
  await disposeCompiledStructural();
}
