import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { memorySource } from '../src/extract/memory-source.js';
import type { SplitData } from '../src/probes/contract.js';
import { disposeCompiledStructural, fitStructural } from '../src/probes/structural-train.js';
import { mulberry32 } from '../src/util/random.js';
import { treeProblem } from '../src/probes/trees.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Structural-probe training time (issue 6): the distance probe at bert-base shape (768-d word
 * vectors, rank 768) on the PTB sample's train/dev sentences (lengths and trees as they are;
 * the vectors are seeded random normals, as timing does not depend on their values), trained
 * with the real regimen (batches of 20, Adam, early stopping on dev, ≤ 40 epochs). Reports
 * seconds per epoch and per layer (one full fit), and what 13 layers would take.
 *
 * The probe is the structural family's own (src/probes/structural-train.ts fitStructural: graphs
 * from blocks.ts, trainProbe, batches streamed from an in-memory activation source).
 *
 *   npm run bench structural
 *   BENCH_STRUCTURAL_LIMIT=500 (sentences per split)  BENCH_STRUCTURAL_MAX_EPOCHS=3  for a quick look
 */
const HIDDEN = 768;
const LIMIT = process.env.BENCH_STRUCTURAL_LIMIT ? Number(process.env.BENCH_STRUCTURAL_LIMIT) : undefined;
const MAX_EPOCHS = Number(process.env.BENCH_STRUCTURAL_MAX_EPOCHS ?? 40);

/** The split's tree sentences (up to LIMIT) with seeded random-normal vectors at layer 0. */
function split(name: SplitData['name'], all: Sentence[], rand: () => number): SplitData {
  const sentences: Sentence[] = [];
  const vecs: Float32Array[] = [];
  for (const s of all) {
    if (!s.heads || treeProblem(s.heads)) continue;
    const n = s.words.length;
    const vectors = new Float32Array(n * HIDDEN);
    for (let i = 0; i < vectors.length; i += 2) {
      // Box–Muller: two standard normals per draw.
      const r = Math.sqrt(-2 * Math.log(1 - rand()));
      const t = 2 * Math.PI * rand();
      vectors[i] = r * Math.cos(t);
      if (i + 1 < vectors.length) vectors[i + 1] = r * Math.sin(t);
    }
    sentences.push(s);
    vecs.push(vectors);
    if (LIMIT !== undefined && sentences.length >= LIMIT) break;
  }
  return { name, sentences, activations: memorySource(new Map([[0, vecs]]), HIDDEN) };
}

export async function benchStructural(): Promise<void> {
  const splits = await loadSplits('ptb', { offline: true });
  const rand = mulberry32(42);
  const train = split('train', splits.train.sentences, rand);
  const dev = split('dev', splits.dev.sentences, rand);
  const words = train.activations.wordCounts.reduce((a, b) => a + b, 0);
  const probeBackend = 'onnxruntime-cpu';
  console.log(`\nstructural: distance probe, ${HIDDEN}-d vectors, rank ${HIDDEN}, PTB sample ${train.sentences.length} train / ${dev.sentences.length} dev sentences (${words} train words), ${probeBackend}, ≤ ${MAX_EPOCHS} epochs`);
  const cpu0 = process.cpuUsage();
  const fit = await fitStructural({
    kind: 'distance',
    layer: 0,
    train,
    dev,
    hidden: HIDDEN,
    rank: HIDDEN,
    seed: 42,
    maxEpochs: MAX_EPOCHS,
    batchSize: 20,
    onEpoch: (e) => console.log(`  epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, dev loss ${e.devLoss.toFixed(4)}`),
  });
  await disposeCompiledStructural();
  const cpu = process.cpuUsage(cpu0);
  // CPU seconds too: on a shared machine wall time depends on the neighbours.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const perEpoch = fit.seconds / fit.epochs;
  const result = {
    bench: 'structural',
    date: new Date().toISOString(),
    probeBackend,
    cpus: cpus().length,
    node: process.version,
    hidden: HIDDEN,
    rank: HIDDEN,
    trainSentences: train.sentences.length,
    devSentences: dev.sentences.length,
    trainWords: words,
    epochs: fit.epochs,
    secondsPerEpoch: Number(perEpoch.toFixed(2)),
    secondsPerLayer: Number(fit.seconds.toFixed(1)),
    cpuSecondsPerEpoch: Number((cpuSeconds / fit.epochs).toFixed(2)),
    loadAverage: loadavg()[0],
    secondsFor13Layers: Number((fit.seconds * 13).toFixed(0)),
    trainWordsPerSecond: Math.round((words * fit.epochs) / fit.seconds),
  };
  console.log(`  ${perEpoch.toFixed(2)} s per epoch (train + dev; ${(cpuSeconds / fit.epochs).toFixed(2)} CPU s), ${fit.epochs} epochs, ${fit.seconds.toFixed(1)} s per layer; 13 layers ≈ ${((fit.seconds * 13) / 60).toFixed(1)} min; load average ${loadavg()[0]!.toFixed(1)}`);
  const root = fileURLToPath(new URL('../..', import.meta.url)); // from dist/bench/
  const file = join(root, '.bench', `structural-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, result);
  console.log(`  written: ${file}`);
}
