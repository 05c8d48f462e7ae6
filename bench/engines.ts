import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { BERT_BASE_UNCASED_CONFIG } from '../src/model/config.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { findNativeTf } from '../src/model/tfjs-backend.js';
import type { Engine, ForwardBatch } from '../src/model/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Engine benchmark (issues 2 and 4): a random model of bert-base-uncased shape, batches of
 * 8 × 128 tokens, every hidden state and every attention map returned. Each engine/backend
 * runs in its own child process so its peak RSS is its own. Prints a table with ratios to
 * tfjs-wasm measured in the same run and writes the figures to .bench/engines-<time>.json.
 *
 *   npm run bench                       all variants
 *   BENCH_ENGINES=onnx-cpu npm run bench   a subset (comma-separated)
 *
 * tokens/s comes from the median batch (best batch beside it); the load average is printed
 * because on a shared machine other processes take cores and every figure drops with them.
 */
const BATCH = 8;
const SEQ = 128;
const SEED = 42;

interface Variant {
  name: string;
  engine: 'tfjs' | 'onnx';
  backend?: 'wasm' | 'cpu' | 'tensorflow';
  /** Timed batches after one warm-up batch. */
  batches: number;
  warmup: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'tfjs-wasm', engine: 'tfjs', backend: 'wasm', batches: 3, warmup: true },
  // Plain JS kernels: one batch takes minutes on 2 cores, so one timed batch, no warm-up.
  { name: 'tfjs-cpu', engine: 'tfjs', backend: 'cpu', batches: 1, warmup: false },
  { name: 'tfjs-tensorflow', engine: 'tfjs', backend: 'tensorflow', batches: 3, warmup: true },
  { name: 'onnx-cpu', engine: 'onnx', batches: 7, warmup: true },
];

export interface EngineBenchResult {
  name: string;
  backend: string;
  /** From the median batch time. */
  tokensPerSecond: number;
  /** From the fastest batch. */
  bestTokensPerSecond: number;
  secondsPerBatch: number;
  batchSeconds: number[];
  /** CPU time (all threads) per batch: the work itself, less sensitive to others' load than wall time. */
  cpuSecondsPerBatch: number;
  tokensPerCpuSecond: number;
  /** 1-minute load average when the variant finished (others' work on a shared machine). */
  loadAverage: number;
  batches: number;
  setupSeconds: number;
  peakRssMiB: number;
  graphBuilt?: boolean;
}

function benchBatch(vocab: number): ForwardBatch {
  // Deterministic ids: [CLS] words... [SEP], no padding (8 × 128 real tokens).
  const ids = new Int32Array(BATCH * SEQ);
  let x = 12345;
  for (let i = 0; i < ids.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    ids[i] = 1000 + (x % (vocab - 1000));
  }
  for (let b = 0; b < BATCH; b++) {
    ids[b * SEQ] = 101;
    ids[b * SEQ + SEQ - 1] = 102;
  }
  return { batchSize: BATCH, seqLen: SEQ, inputIds: ids, attentionMask: new Int32Array(BATCH * SEQ).fill(1), tokenTypeIds: new Int32Array(BATCH * SEQ) };
}

/** Child side: one variant, result JSON on stdout. */
async function runChild(v: Variant): Promise<void> {
  const t0 = performance.now();
  // The random-init control of bert-base-uncased shape (weights seeded; vocab from the package).
  const model = await loadModel('random', { seed: SEED, offline: true });
  const engine: Engine = await createEngine(model, { engine: v.engine, backend: v.backend });
  const setupSeconds = (performance.now() - t0) / 1000;
  const batch = benchBatch(model.config.vocabSize);
  if (v.warmup) await engine.forward(batch);
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < v.batches; i++) {
    const t1 = performance.now();
    const out = await engine.forward(batch);
    times.push((performance.now() - t1) / 1000);
    if (out.hiddenStates.some((h) => !h) || out.attentions.some((a) => !a)) throw new Error('incomplete output');
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuSecondsPerBatch = (cpu.user + cpu.system) / 1e6 / v.batches;
  // Median batch time: the machine may be shared, and the median is robust to a stray slow batch.
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const result: EngineBenchResult = {
    name: v.name,
    backend: `${engine.kind}/${engine.backend}`,
    tokensPerSecond: (BATCH * SEQ) / median,
    bestTokensPerSecond: (BATCH * SEQ) / sorted[0]!,
    secondsPerBatch: median,
    batchSeconds: times,
    cpuSecondsPerBatch,
    tokensPerCpuSecond: (BATCH * SEQ) / cpuSecondsPerBatch,
    batches: v.batches,
    loadAverage: loadavg()[0]!,
    setupSeconds,
    // ru_maxrss, in KiB on Linux: the process's peak resident set.
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    graphBuilt: engine instanceof OnnxEngine ? engine.graphBuilt : undefined,
  };
  await engine.dispose();
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function available(v: Variant): Promise<boolean> {
  if (v.backend === 'tensorflow') return (await findNativeTf()) !== null;
  return true;
}

/** Parent side: every variant in its own process, then the table. */
export async function benchEngines(): Promise<EngineBenchResult[]> {
  const only = process.env.BENCH_ENGINES?.split(',').map((s) => s.trim());
  const self = fileURLToPath(import.meta.url);
  const results: EngineBenchResult[] = [];
  console.log(`\nengines: random bert-base-uncased shape, batch ${BATCH} x ${SEQ} tokens, all ${BERT_BASE_UNCASED_CONFIG.numHiddenLayers + 1} hidden states + ${BERT_BASE_UNCASED_CONFIG.numHiddenLayers} attention maps`);
  for (const v of VARIANTS) {
    if (only && !only.includes(v.name)) continue;
    if (!(await available(v))) {
      console.log(`  ${v.name}: not installed, skipped`);
      continue;
    }
    process.stdout.write(`  ${v.name}: running (${v.warmup ? '1 warm-up + ' : ''}${v.batches} batch${v.batches > 1 ? 'es' : ''}) ...\n`);
    const child = spawnSync(process.execPath, ['--expose-gc', self, '--child', v.name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      console.log(`  ${v.name}: failed (exit ${child.status}${child.signal ? `, ${child.signal}` : ''})`);
      continue;
    }
    results.push(JSON.parse(line) as EngineBenchResult);
  }
  const base = results.find((r) => r.name === 'tfjs-wasm');
  const rows = results.map((r) => [
    r.name,
    r.backend,
    r.tokensPerSecond.toFixed(0),
    r.bestTokensPerSecond.toFixed(0),
    r.secondsPerBatch.toFixed(2),
    r.tokensPerCpuSecond.toFixed(0),
    r.peakRssMiB.toFixed(0),
    base ? `${(r.tokensPerSecond / base.tokensPerSecond).toFixed(2)}x` : 'n/a',
    r.setupSeconds.toFixed(1),
    r.loadAverage.toFixed(1),
  ]);
  const header = ['variant', 'engine/backend', 'tokens/s', 'best tok/s', 's/batch', 'tok/CPU-s', 'peak RSS MiB', 'vs tfjs-wasm', 'setup s', 'load avg'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => '  ' + r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
  const onnx = results.find((r) => r.name === 'onnx-cpu');
  if (onnx) console.log(`  onnx-cpu target (issue 4): >= 1000 tokens/s on 2 cores: ${onnx.tokensPerSecond >= 1000 ? 'met' : 'NOT met'} (${onnx.tokensPerSecond.toFixed(0)} tokens/s at load average ${onnx.loadAverage.toFixed(1)})`);
  console.log('  tok/CPU-s: tokens per second of CPU time over all threads; with idle cores, onnx (one thread per core) approaches cores x this, tfjs-wasm (one thread) this.');
  const file = join(fileURLToPath(new URL('../..', import.meta.url)), '.bench', `engines-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'engines', date: new Date().toISOString(), batch: BATCH, seqLen: SEQ, cpus: (await import('node:os')).cpus().length, loadAverageAtEnd: loadavg(), node: process.version, results });
  console.log(`  written: ${file}`);
  return results;
}

if (process.argv[2] === '--child') {
  const v = VARIANTS.find((x) => x.name === process.argv[3]);
  if (!v) throw new Error(`unknown variant ${process.argv[3]}`);
  await runChild(v);
}
