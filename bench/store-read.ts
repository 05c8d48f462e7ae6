import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { openActivations } from '../src/extract/sources/open.js';
import { ActivationStore, openStore } from '../src/extract/store.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { mulberry32, shuffled } from '../src/util/random.js';

/**
 * Store reads (issue 9 item 4): peak RSS of one training epoch's reads, in the access pattern of a
 * scalar mix over 13 layers (every batch of 20 sentences, in a seeded shuffled order, reads all
 * 13 layers and mixes them), for UD English EWT train (12,544 sentences) and the PTB sample
 * (3,914), each in its own child process (ru_maxrss). The stores hold random float32 vectors at
 * 768-d with each corpus's real word counts, written in the store's format; layers 1..12 are
 * symbolic links to layer.0's shard files (the reads are the same positional reads, and the
 * disk holds one layer). The last row reads one whole layer the old way (readLayer), for scale.
 *
 *   npm run bench store-read
 */
const HIDDEN = 768;
const LAYERS = 13;
const BATCH = 20;
const SHARD = 256;

export interface ReadPassResult {
  sentences: number;
  words: number;
  layers: number;
  mode: 'batches' | 'whole-layer';
  seconds: number;
  reads: number;
  largestReadMiB: number;
  peakRssMiB: number;
  checksum: number;
}

/** Write a store with these word counts: random vectors, layer.0 real, other layers linked to it. */
export function writeSyntheticStore(dir: string, wordCounts: readonly number[], hidden: number, layers: number, shardSize = SHARD): void {
  const rand = mulberry32(7);
  mkdirSync(join(dir, 'layer.0'), { recursive: true });
  for (let k = 0; k * shardSize < wordCounts.length; k++) {
    let words = 0;
    for (let s = k * shardSize; s < Math.min(wordCounts.length, (k + 1) * shardSize); s++) words += wordCounts[s]!;
    const v = new Float32Array(words * hidden);
    for (let i = 0; i < v.length; i++) v[i] = rand() - 0.5;
    writeSafetensors(join(dir, 'layer.0', `shard-${String(k).padStart(5, '0')}.safetensors`), { vectors: { dtype: 'F32', shape: [words, hidden], data: v } });
  }
  for (let l = 1; l < layers; l++) symlinkSync('layer.0', join(dir, `layer.${l}`));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ format: 'bert-probe-activations', version: 1, hiddenSize: hidden, layers: [...Array(layers).keys()], wordCounts, shardSize, model: 'synthetic' }));
}

/** One epoch in a scalar mix's access pattern: shuffled batches, every layer of each batch read and mixed. */
export async function readPass(store: ActivationStore, layers: number, batch: number, mode: ReadPassResult['mode']): Promise<ReadPassResult> {
  const t0 = performance.now();
  const N = store.numSentences;
  let checksum = 0;
  if (mode === 'whole-layer') {
    const { vectors } = await store.readLayer(0);
    for (let i = 0; i < vectors.length; i += 997) checksum += vectors[i]!;
  } else {
    const order = shuffled([...Array(N).keys()], mulberry32(1));
    for (let b = 0; b < N; b += batch) {
      const ids = order.slice(b, b + batch);
      let mix: Float32Array | null = null;
      for (let l = 0; l < layers; l++) {
        const v = await store.readWords(l, ids);
        mix ??= new Float32Array(v.length);
        for (let i = 0; i < v.length; i++) mix[i]! += v[i]! / layers;
      }
      checksum += mix![0] ?? 0;
    }
  }
  return {
    sentences: N, words: store.wordCounts.reduce((a, b) => a + b, 0), layers: mode === 'whole-layer' ? 1 : layers, mode,
    seconds: (performance.now() - t0) / 1000, reads: store.stats.reads, largestReadMiB: store.stats.largestRead / 2 ** 20,
    peakRssMiB: process.resourceUsage().maxRSS / 1024, checksum,
  };
}

/** Run one read pass in a child process (its own peak RSS); used by the bench and by test/extract-source-memory. */
export function readPassInChild(dir: string, layers: number, batch: number, mode: ReadPassResult['mode']): ReadPassResult {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [self, '--child', dir, String(layers), String(batch), mode], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) throw new Error(`read pass child failed (exit ${child.status}): ${child.stderr.slice(-2000)}`);
  return JSON.parse(line) as ReadPassResult;
}

export async function benchStoreRead(): Promise<ReadPassResult[]> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  process.env.BERT_PROBE_DATA_MIRROR ??= join(root, '..', 'shared', 'data');
  console.log(`\nstore-read: one epoch of reads, ${LAYERS} layers mixed per batch of ${BATCH}, ${HIDDEN}-d float32, shards of ${SHARD}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const results: (ReadPassResult & { data: string })[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'bert-probe-bench-store-read-'));
  try {
    for (const data of ['ptb:train', 'ewt:train']) {
      const corpus = await loadCorpus(data, { offline: true });
      const dir = join(tmp, data.replace(/\W/g, '_'));
      writeSyntheticStore(dir, corpus.sentences.map((s) => s.words.length), HIDDEN, LAYERS);
      await (await openActivations(dir, corpus)).close(); // counts checked as a probe run would
      for (const [layers, mode] of [[1, 'batches'], [LAYERS, 'batches'], [1, 'whole-layer']] as const) {
        const r = readPassInChild(dir, layers, BATCH, mode);
        results.push({ ...r, data });
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const header = ['data', 'sentences', 'words', 'layers', 'read', 'seconds', 'reads', 'largest read MiB', 'peak RSS MiB'];
  const rows = results.map((r) => [r.data, String(r.sentences), String(r.words), String(r.layers), r.mode, r.seconds.toFixed(1), String(r.reads), r.largestReadMiB.toFixed(2), r.peakRssMiB.toFixed(0)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => '  ' + r.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
  const rss = (data: string, layers: number, mode: string) => results.find((r) => r.data === data && r.layers === layers && r.mode === mode)?.peakRssMiB;
  const e = rss('ewt:train', LAYERS, 'batches'), p = rss('ptb:train', LAYERS, 'batches'), e1 = rss('ewt:train', 1, 'batches');
  if (e && p && e1) console.log(`  EWT/PTB peak RSS, ${LAYERS} layers: ${(e / p).toFixed(3)} (goal ≤ 1.15); EWT ${LAYERS} layers / 1 layer: ${(e / e1).toFixed(3)}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const file = join(root, '.bench', `store-read-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'store-read', date: new Date().toISOString(), loadavg: loadavg(), node: process.version, results });
  console.log(`  written: ${file}`);
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--child') {
  const [dir, layers, batch, mode] = process.argv.slice(3);
  const store = openStore([dir!]);
  process.stdout.write(JSON.stringify(await readPass(store, Number(layers), Number(batch), mode as ReadPassResult['mode'])) + '\n');
}
