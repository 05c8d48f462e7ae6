import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { extractWithReport } from '../src/extract/pipeline.js';
import { openStore } from '../src/extract/store.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { writeSafetensors, type TensorToWrite } from '../src/model/safetensors.js';
import type { Precision } from '../src/model/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * `npm run bench -- extract-vs-torch` (issue 14): `bert-probe extract`'s work, whole process
 * against whole process, for our onnx engine (fp32 and --precision int8) and a PyTorch peer
 * (bench/peers/torch_extract.py, fp32 and bf16 autocast) on the same machine in one run:
 * the first N sentences of UD English EWT dev (default 1,000), a random model of
 * bert-base-uncased shape (seed 42), all 13 hidden states mean-pooled to words and written to
 * disk. Same weights (the random model written as safetensors for the peer), same word pieces
 * (our tokenizer's ids and word spans handed to the peer, so its time has no tokenizing), same
 * outputs, compared value by value (max/mean absolute difference per layer and a checksum).
 *
 * Each variant runs in its own process, timed from spawn to exit by this process; every child
 * reports its own CPU seconds, peak RSS and a time breakdown. Variants are interleaved and the
 * whole round repeated (BENCH_VS_TORCH_REPEAT, default 2) because the machine is shared: the
 * ratios come from the median wall time of each variant, and the load average is printed
 * beside them. The ONNX graphs are built and cached before any timed run.
 *
 *   npm run bench -- extract-vs-torch
 *   BENCH_VS_TORCH_SENTENCES=200 BENCH_VS_TORCH_REPEAT=1 BENCH_VS_TORCH_VARIANTS=ours-fp32,torch-fp32 npm run bench -- extract-vs-torch
 *   BENCH_OURS_BATCH=16 BENCH_TORCH_BATCH=8 BENCH_ONNX_WORKER=0   (batch sizes; 0: session on the main thread)
 *   BENCH_ONNX_SPIN=1      (onnxruntime's intra-op threads busy-wait between ops; default off)
 *   taskset -c 1 npm run bench -- extract-vs-torch   (one core: one thread on each side)
 */
const SENTENCES = Number(process.env.BENCH_VS_TORCH_SENTENCES ?? 1000);
const REPEAT = Number(process.env.BENCH_VS_TORCH_REPEAT ?? 2);
const DATA = process.env.BENCH_VS_TORCH_DATA ?? 'ewt:dev';
const OURS_BATCH = Number(process.env.BENCH_OURS_BATCH ?? 16);
const TORCH_BATCH = Number(process.env.BENCH_TORCH_BATCH ?? 8);
const SEED = 42;
/**
 * Threads per side: one per core this process may run on (so `taskset -c 1` gives 1 on both
 * sides: our intra-op threads, torch.set_num_threads in the peer).
 */
const THREADS = availableParallelism();
const PEER = fileURLToPath(new URL('../../bench/peers/torch_extract.py', import.meta.url));

interface Variant {
  name: string;
  side: 'ours' | 'torch';
  precision: string;
}
const VARIANTS: Variant[] = [
  { name: 'ours-fp32', side: 'ours', precision: 'fp32' },
  { name: 'ours-int8', side: 'ours', precision: 'int8' },
  { name: 'torch-fp32', side: 'torch', precision: 'fp32' },
  { name: 'torch-bf16', side: 'torch', precision: 'bf16' },
];

/** What a child reports (both sides fill the same fields; the peer has no tokenize time). */
interface ChildReport {
  sentences: number;
  words: number;
  tokens: number;
  /** Seconds from the child's start to the end of its work (its own clock). */
  seconds: number;
  forwardSeconds: number;
  tokenizeSeconds: number;
  poolSeconds: number;
  writeSeconds: number;
  /** Start-up: runtime import, model/weights load, engine/session creation. */
  setupSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  batchSize: number;
  threads: number;
}

interface RunResult extends ChildReport {
  variant: string;
  wallSeconds: number;
  loadAverageBefore: number;
  loadAverageAfter: number;
}

function corpusSlice(full: Awaited<ReturnType<typeof loadCorpus>>) {
  if (full.sentences.length < SENTENCES) throw new Error(`${DATA} has only ${full.sentences.length} sentences`);
  return { ...full, id: `${full.id}[0:${SENTENCES}]`, sentences: full.sentences.slice(0, SENTENCES) };
}

/** Child: the random model's weights, config and word pieces for the peer; both ONNX graphs built and cached. */
async function prepare(work: string): Promise<void> {
  const model = await loadModel('random', { seed: SEED, offline: true });
  for (const precision of ['fp32', 'int8'] as Precision[]) await (await createEngine(model, { engine: 'onnx', precision })).dispose();
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of model.weights) tensors.set(name, { dtype: 'F32', shape: t.shape, data: t.data });
  writeSafetensors(join(work, 'weights.safetensors'), tensors);
  const c = model.config;
  writeFileSync(join(work, 'config.json'), JSON.stringify({ hidden_size: c.hiddenSize, num_attention_heads: c.numAttentionHeads, num_hidden_layers: c.numHiddenLayers, layer_norm_eps: c.layerNormEps }));
  const corpus = corpusSlice(await loadCorpus(DATA, { offline: true }));
  const ids: number[][] = [];
  const spans: [number, number][][] = [];
  for (const s of corpus.sentences) {
    const enc = model.tokenizer.encodeWords(s.words);
    if (enc.ids.length > c.maxPositionEmbeddings) throw new Error(`sentence ${s.id} is longer than ${c.maxPositionEmbeddings} pieces: the peer has no windows`);
    ids.push([...enc.ids]);
    spans.push(enc.wordSpans.map(([a, b]) => [a, b]));
  }
  writeFileSync(join(work, 'input.json'), JSON.stringify({ ids, spans }));
}

/** Child: our side, the same calls as `bert-probe extract` (random model, all layers, mean pooling). */
async function runOurs(precision: Precision, storeDir: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel('random', { seed: SEED, offline: true });
  const corpus = corpusSlice(await loadCorpus(DATA, { offline: true }));
  const engine = await OnnxEngine.create(model, { precision, worker: process.env.BENCH_ONNX_WORKER !== '0', spinning: process.env.BENCH_ONNX_SPIN === '1' });
  const setupSeconds = (performance.now() - t0) / 1000;
  const layers = [...Array(model.config.numHiddenLayers + 1).keys()];
  const { store, report } = await extractWithReport({ model, engine, corpus, precision, request: { layers, attentionLayers: [] }, storeDir, batchSize: OURS_BATCH });
  await engine.dispose();
  const cpu = process.cpuUsage();
  const out: ChildReport = {
    sentences: report.sentences,
    words: store.wordCounts.reduce((a, b) => a + b, 0),
    tokens: report.tokens,
    seconds: (performance.now() - t0) / 1000,
    forwardSeconds: report.forwardSeconds,
    tokenizeSeconds: report.tokenizeSeconds,
    poolSeconds: report.poolSeconds,
    writeSeconds: report.writeSeconds,
    setupSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    batchSize: OURS_BATCH,
    threads: engine.threads,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function torchAvailable(): string | null {
  const r = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function runVariant(v: Variant, work: string, self: string, env: NodeJS.ProcessEnv): RunResult | null {
  const outDir = join(work, v.name);
  rmSync(outDir, { recursive: true, force: true });
  const args =
    v.side === 'ours'
      ? [process.execPath, [self, '--ours', v.precision, join(outDir, 'store')]]
      : ['python3', [PEER, '--weights', join(work, 'weights.safetensors'), '--config', join(work, 'config.json'), '--input', join(work, 'input.json'), '--out', outDir, '--batch-size', String(TORCH_BATCH), '--threads', String(THREADS), '--precision', v.precision]];
  const loadAverageBefore = loadavg()[0]!;
  const t0 = performance.now();
  const child = spawnSync(args[0] as string, args[1] as string[], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  const wallSeconds = (performance.now() - t0) / 1000;
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) {
    console.log(`  ${v.name}: failed (exit ${child.status}${child.signal ? `, ${child.signal}` : ''})`);
    return null;
  }
  const r = JSON.parse(line) as Record<string, number>;
  const report: ChildReport =
    v.side === 'ours'
      ? (r as unknown as ChildReport)
      : {
          sentences: r.sentences!, words: r.words!, tokens: r.tokens!, seconds: r.seconds!, forwardSeconds: r.forwardSeconds!,
          tokenizeSeconds: 0, poolSeconds: r.poolSeconds!, writeSeconds: r.writeSeconds!, setupSeconds: r.importSeconds! + r.loadSeconds!,
          cpuSeconds: r.cpuSeconds!, peakRssMiB: r.peakRssMiB!, batchSize: r.batchSize!, threads: r.threads!,
        };
  return { ...report, variant: v.name, wallSeconds, loadAverageBefore, loadAverageAfter: loadavg()[0]! };
}

/** Word vectors of one hidden state from either side, [words, hidden] in corpus order. */
async function layerVectors(work: string, v: string, layer: number, hidden: number, words: number): Promise<Float32Array> {
  if (v.startsWith('ours')) return (await openStore([join(work, v, 'store')]).readLayer(layer)).vectors;
  const data = new Float32Array(words * hidden);
  const fd = openSync(join(work, v, `layer.${layer}.f32`), 'r');
  try {
    readSync(fd, new Uint8Array(data.buffer), 0, data.byteLength, 0);
  } finally {
    closeSync(fd);
  }
  return data;
}

interface Comparison {
  variant: string;
  against: string;
  maxAbs: number;
  meanAbs: number;
  /** Per hidden state 0..L. */
  perLayerMax: number[];
  /** Sum of |value| over every word vector of every layer (a plain sum of LayerNorm outputs is ~0). */
  checksum: number;
  againstChecksum: number;
}

async function compare(work: string, v: string, against: string, layers: number, hidden: number, words: number): Promise<Comparison> {
  const perLayerMax: number[] = [];
  let sum = 0, n = 0, checksum = 0, againstChecksum = 0;
  for (let l = 0; l <= layers; l++) {
    const a = await layerVectors(work, v, l, hidden, words);
    const b = await layerVectors(work, against, l, hidden, words);
    if (a.length !== b.length) throw new Error(`${v} and ${against} hold different numbers of word vectors at layer ${l}`);
    let max = 0;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i]! - b[i]!);
      if (d > max) max = d;
      sum += d;
      checksum += Math.abs(a[i]!);
      againstChecksum += Math.abs(b[i]!);
    }
    n += a.length;
    perLayerMax.push(max);
  }
  return { variant: v, against, maxAbs: Math.max(...perLayerMax), meanAbs: sum / n, perLayerMax, checksum, againstChecksum };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchExtractVsTorch(): Promise<unknown> {
  const self = fileURLToPath(import.meta.url);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const env = { ...process.env, BERT_PROBE_DATA_MIRROR: process.env.BERT_PROBE_DATA_MIRROR ?? join(root, '..', 'shared', 'data') };
  const only = process.env.BENCH_VS_TORCH_VARIANTS?.split(',').map((s) => s.trim());
  console.log(`\nextract-vs-torch: random bert-base-uncased shape, ${DATA} first ${SENTENCES} sentences, 13 hidden states mean-pooled to words and written; whole processes, ${REPEAT} interleaved round(s)`);
  const torchVersion = torchAvailable();
  let variants = VARIANTS.filter((v) => !only || only.includes(v.name));
  if (!torchVersion) {
    console.log('  python3 with torch not found: the PyTorch peer is skipped (pip install --no-deps torch from $PIP_FIND_LINKS); ours only');
    variants = variants.filter((v) => v.side === 'ours');
  }
  const work = mkdtempSync(join(tmpdir(), 'bert-probe-vs-torch-'));
  try {
    process.stdout.write('  preparing (weights for the peer, word pieces, ONNX graphs) ...\n');
    const prep = spawnSync(process.execPath, [self, '--prepare', work], { encoding: 'utf8', env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (prep.status !== 0 || !existsSync(join(work, 'input.json'))) throw new Error(`preparation failed (exit ${prep.status})`);
    const runs: RunResult[] = [];
    for (let round = 0; round < REPEAT; round++) {
      for (const v of variants) {
        process.stdout.write(`  round ${round + 1}/${REPEAT} ${v.name}: running (load ${loadavg()[0]!.toFixed(1)}) ...\n`);
        const r = runVariant(v, work, self, env);
        if (r) {
          runs.push(r);
          console.log(`    ${r.wallSeconds.toFixed(1)} s wall, ${r.cpuSeconds.toFixed(1)} CPU s, load ${r.loadAverageAfter.toFixed(1)}`);
        }
      }
    }
    const byVariant = new Map<string, RunResult[]>();
    for (const r of runs) byVariant.set(r.variant, [...(byVariant.get(r.variant) ?? []), r]);
    const cores = THREADS;
    const summary = [...byVariant.entries()].map(([variant, rs]) => {
      const wall = median(rs.map((r) => r.wallSeconds));
      const pick = (f: (r: RunResult) => number) => median(rs.map(f));
      return {
        variant, runs: rs.length, wallSeconds: wall, bestWallSeconds: Math.min(...rs.map((r) => r.wallSeconds)),
        tokensPerSecond: rs[0]!.tokens / wall, cpuSeconds: pick((r) => r.cpuSeconds),
        idleCoreShare: Math.max(0, 1 - pick((r) => r.cpuSeconds / (r.wallSeconds * cores))),
        setupSeconds: pick((r) => r.setupSeconds), forwardSeconds: pick((r) => r.forwardSeconds), tokenizeSeconds: pick((r) => r.tokenizeSeconds),
        poolSeconds: pick((r) => r.poolSeconds), writeSeconds: pick((r) => r.writeSeconds), peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
        loadAverage: median(rs.flatMap((r) => [r.loadAverageBefore, r.loadAverageAfter])), tokens: rs[0]!.tokens, words: rs[0]!.words, batchSize: rs[0]!.batchSize, threads: rs[0]!.threads,
      };
    });
    const get = (name: string) => summary.find((s) => s.variant === name);
    const base = get('torch-fp32');
    const header = ['variant', 'wall s', 'best s', 'vs torch-fp32', 'tokens/s', 'CPU s', 'CPU vs torch-fp32', 'idle cores', 'setup', 'forward', 'tokenize', 'pool', 'write', 'peak RSS MiB', 'batch', 'threads', 'load avg'];
    const rows = summary.map((s) => [
      s.variant, s.wallSeconds.toFixed(1), s.bestWallSeconds.toFixed(1), base ? `${(base.wallSeconds / s.wallSeconds).toFixed(2)}x` : 'n/a', s.tokensPerSecond.toFixed(0),
      s.cpuSeconds.toFixed(1), base ? `${(base.cpuSeconds / s.cpuSeconds).toFixed(2)}x` : 'n/a', `${(100 * s.idleCoreShare).toFixed(0)}%`, s.setupSeconds.toFixed(1), s.forwardSeconds.toFixed(1), s.tokenizeSeconds.toFixed(2),
      s.poolSeconds.toFixed(1), s.writeSeconds.toFixed(1), s.peakRssMiB.toFixed(0), String(s.batchSize), String(s.threads), s.loadAverage.toFixed(1),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => '  ' + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(fmt(header));
    for (const r of rows) console.log(fmt(r));
    console.log(`  wall: spawn to exit (median of ${REPEAT}); forward: ours = time the main thread waited for the engine (the rest overlapped), torch = forward calls; CPU vs torch-fp32: torch's CPU seconds / ours (the work itself, less sensitive to others' load than wall time); idle cores: 1 - CPU s / (wall x ${cores} cores); torch ${torchVersion ?? 'n/a'} has no tokenize time (it is given our word pieces)`);

    // Same outputs: every word vector of every layer, ours against the peer.
    const comparisons: Comparison[] = [];
    const hidden = 768, L = 12;
    const words = summary[0]?.words ?? 0;
    const pairs: [string, string][] = [['ours-fp32', 'torch-fp32'], ['ours-int8', 'ours-fp32'], ['torch-bf16', 'torch-fp32'], ['ours-int8', 'torch-fp32']];
    for (const [a, b] of pairs) if (get(a) && get(b)) comparisons.push(await compare(work, a, b, L, hidden, words));
    for (const c of comparisons) {
      const same = c.variant === 'ours-fp32' ? ` -> ${c.maxAbs <= 1e-3 ? 'same outputs (within 1e-3)' : 'OUTPUTS DIFFER'}` : '';
      console.log(`  ${c.variant} vs ${c.against}: max |diff| ${c.maxAbs.toExponential(2)}, mean ${c.meanAbs.toExponential(2)} over ${words} words x 13 layers; checksums (sum |x|) ${c.checksum.toFixed(1)} / ${c.againstChecksum.toFixed(1)}${same}`);
    }
    const ours = get('ours-fp32'), int8 = get('ours-int8'), bf16 = get('torch-bf16');
    if (ours && base) console.log(`  goal fp32 >= 1.5x torch eager: ${base.wallSeconds / ours.wallSeconds >= 1.5 ? 'met' : 'NOT met'} (${(base.wallSeconds / ours.wallSeconds).toFixed(2)}x wall at load ${ours.loadAverage.toFixed(1)}, ${(base.cpuSeconds / ours.cpuSeconds).toFixed(2)}x CPU)`);
    if (summary.some((s) => s.loadAverage > cpus().length)) console.log(`  load average above ${cpus().length} (the machine's core count): other processes took the cores, wall ratios say more about the scheduler than about the engines; repeat on a quieter machine`);
    if (int8 && bf16) console.log(`  goal int8 >= torch bf16 autocast: ${bf16.wallSeconds / int8.wallSeconds >= 1 ? 'met' : 'NOT met'} (${(bf16.wallSeconds / int8.wallSeconds).toFixed(2)}x wall, ${(bf16.cpuSeconds / int8.cpuSeconds).toFixed(2)}x CPU)`);
    const file = join(root, '.bench', `extract-vs-torch-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    mkdirSync(join(root, '.bench'), { recursive: true });
    writeJsonAtomic(file, { bench: 'extract-vs-torch', date: new Date().toISOString(), data: DATA, sentences: SENTENCES, cores, node: process.version, torch: torchVersion, runs, summary, comparisons });
    console.log(`  written: ${file}`);
    return { summary, comparisons };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--prepare') await prepare(process.argv[3]!);
  else if (process.argv[2] === '--ours') await runOurs(process.argv[3] as Precision, process.argv[4]!);
}
