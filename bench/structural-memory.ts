/**
 * Peak memory of structural-probe training against corpus size (issue 9 Must show: probe
 * training on EWT train uses no more peak memory than on the PTB sample, within 15%). For each
 * corpus, a store of random 768-d vectors with the corpus's real word counts (train and dev,
 * the sentences the structural family keeps) is written in the store's format, and a child
 * process trains the distance and depth probes (rank 768) for one epoch on batches streamed from
 * it (fitStructural: positional readWords per batch), then reports its peak RSS (ru_maxrss).
 * The ratio EWT / PTB is the figure; the load average is printed beside it.
 *
 *   npm run bench structural-memory
 *   BENCH_MEMORY_TRAIN=N: train on the first N train sentences only (and N/8 dev), still read from
 *   the full-size store with the full corpus loaded (a quick look at the fixed cost; the full
 *   epoch is the figure the issue asks for)
 */
const CAP = process.env.BENCH_MEMORY_TRAIN ? Number(process.env.BENCH_MEMORY_TRAIN) : undefined;
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { openStore } from '../src/extract/store.js';
import type { SplitData } from '../src/probes/contract.js';
import { disposeCompiledStructural, fitStructural } from '../src/probes/structural-train.js';
import { treeProblem } from '../src/probes/trees.js';
import { writeSyntheticStore } from './store-read.js';

const HIDDEN = 768;
const SELF = fileURLToPath(import.meta.url);

/** GLIBC_TUNABLES as bin/bert-probe's sh line sets them (the caller's own appended, as there). */
function cliMallocTunables(): string {
  const line = readFileSync(fileURLToPath(new URL('../../bin/bert-probe', import.meta.url)), 'utf8').split('\n')[1] ?? '';
  const ours = /GLIBC_TUNABLES="([^"$]*)/.exec(line)?.[1];
  if (!ours) throw new Error('bin/bert-probe sets no GLIBC_TUNABLES on its second line');
  return process.env.GLIBC_TUNABLES ? `${ours}:${process.env.GLIBC_TUNABLES}` : ours;
}

async function treeSplits(corpus: string): Promise<{ train: Sentence[]; dev: Sentence[] }> {
  const s = await loadSplits(corpus, { offline: true });
  const keep = (xs: Sentence[]) => xs.filter((x) => x.heads && !treeProblem(x.heads));
  return { train: keep(s.train.sentences), dev: keep(s.dev.sentences) };
}

/** Child: train both probes one epoch on the stores, print {peakRssMiB, seconds} as JSON. */
async function child(corpus: string, trainDir: string, devDir: string): Promise<void> {
  const t0 = performance.now();
  const s = await treeSplits(corpus);
  const train: SplitData = { name: 'train', sentences: CAP ? s.train.slice(0, CAP) : s.train, activations: openStore([trainDir]) };
  const dev: SplitData = { name: 'dev', sentences: CAP ? s.dev.slice(0, Math.ceil(CAP / 8)) : s.dev, activations: openStore([devDir]) };
  const common = { layer: 0, train, dev, hidden: HIDDEN, rank: HIDDEN, seed: 1, maxEpochs: 1, batchSize: 20 };
  (globalThis as { gc?: () => void }).gc?.();
  const loadedMiB = process.memoryUsage().rss / 1048576;
  const peakAtLoadMiB = process.resourceUsage().maxRSS / 1024;
  // Peak RSS while training, sampled (the process peak may be the corpus parse instead).
  let trainPeakMiB = loadedMiB;
  const sampler = setInterval(() => (trainPeakMiB = Math.max(trainPeakMiB, process.memoryUsage().rss / 1048576)), 20);
  await Promise.all([fitStructural({ ...common, kind: 'distance' }), fitStructural({ ...common, kind: 'depth' })]);
  clearInterval(sampler);
  await disposeCompiledStructural();
  const words = train.activations.wordCounts.reduce((a, b) => a + b, 0);
  process.stdout.write(JSON.stringify({ corpus, sentences: s.train.length, words, peakRssMiB: process.resourceUsage().maxRSS / 1024, peakAtLoadMiB, loadedMiB, trainPeakMiB, seconds: (performance.now() - t0) / 1000 }) + '\n');
}

export async function benchStructuralMemory(): Promise<void> {
  const results: { corpus: string; sentences: number; words: number; peakRssMiB: number; peakAtLoadMiB: number; loadedMiB: number; trainPeakMiB: number; seconds: number }[] = [];
  console.log(`\nstructural-memory: peak RSS of one epoch of distance + depth probe training (768-d, rank 768) streamed from a store${CAP ? ` (first ${CAP} train sentences of each corpus)` : ''}`);
  for (const corpus of ['ptb', 'ewt']) {
    const s = await treeSplits(corpus);
    const dir = mkdtempSync(join(tmpdir(), 'bert-probe-structural-memory-'));
    try {
      writeSyntheticStore(join(dir, 'train'), s.train.map((x) => x.words.length), HIDDEN, 1);
      writeSyntheticStore(join(dir, 'dev'), s.dev.map((x) => x.words.length), HIDDEN, 1);
      // The child allocates as the CLI does: with the malloc tunables bin/bert-probe starts node with.
      const env = { ...process.env, GLIBC_TUNABLES: cliMallocTunables() };
      const r = spawnSync(process.execPath, [...(process.env.BENCH_MEMORY_NO_GC ? [] : ['--expose-gc']), SELF, 'child', corpus, join(dir, 'train'), join(dir, 'dev')], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
      if (r.status !== 0) throw new Error(`structural-memory child (${corpus}) failed: ${r.stderr}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
      results.push(res);
      console.log(`  ${corpus.padEnd(4)} train ${String(res.sentences).padStart(6)} sentences ${String(res.words).padStart(7)} words: peak RSS ${res.peakRssMiB.toFixed(0)} MiB (by the end of the corpus load ${res.peakAtLoadMiB.toFixed(0)}, after it ${res.loadedMiB.toFixed(0)}, training ${res.trainPeakMiB.toFixed(0)} sampled), ${res.seconds.toFixed(0)} s; load ${loadavg()[0]!.toFixed(1)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const [ptb, ewt] = results;
  console.log(`  EWT / PTB peak RSS: ${(ewt!.peakRssMiB / ptb!.peakRssMiB).toFixed(3)} (goal ≤ 1.15) for ${(ewt!.words / ptb!.words).toFixed(1)}× the train words`);
}

if (process.argv[2] === 'child') await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
