import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BERT_BASE_UNCASED_CONFIG } from '../src/model/config.js';
import { createEngine } from '../src/model/engine.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { randomWeights, randomWeightsSha256 } from '../src/model/random.js';
import { findNativeTf } from '../src/model/tfjs-backend.js';
import type { Engine, ForwardBatch, LoadedModel, Tokenizer } from '../src/model/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Engine benchmark (issues 2 and 4): a random model of bert-base-uncased shape, batches of
 * 8 × 128 tokens, every hidden state and every attention map returned. Each engine/backend
 * runs in its own child process so its peak RSS is its own. Prints a table with ratios to
 * tfjs-wasm measured in the same run and writes the figures to .bench/engines-<time>.json.
 *
 *   npm run bench                       all variants
 *   BENCH_ENGINES=onnx-cpu npm run bench   a subset (comma-separated)
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
  { name: 'tfjs-wasm', engine: 'tfjs', backend: 'wasm', batches: 2, warmup: true },
  // Plain JS kernels: one batch takes minutes on 2 cores, so one timed batch, no warm-up.
  { name: 'tfjs-cpu', engine: 'tfjs', backend: 'cpu', batches: 1, warmup: false },
  { name: 'tfjs-tensorflow', engine: 'tfjs', backend: 'tensorflow', batches: 3, warmup: true },
  { name: 'onnx-cpu', engine: 'onnx', batches: 5, warmup: true },
];

export interface EngineBenchResult {
  name: string;
  backend: string;
  tokensPerSecond: number;
  secondsPerBatch: number;
  batches: number;
  setupSeconds: number;
  peakRssMiB: number;
  graphBuilt?: boolean;
}

function randomModel(): LoadedModel {
  const config = BERT_BASE_UNCASED_CONFIG;
  return {
    source: { id: 'random', path: null, weightsSha256: randomWeightsSha256(config, SEED), format: 'random', sourceDtype: 'F32', randomInit: true },
    config,
    // The engines never tokenize; the batch below is made of ids.
    tokenizer: null as unknown as Tokenizer,
    weights: randomWeights(config, SEED),
    hasMlmHead: true,
  };
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
  const model = randomModel();
  const engine: Engine = await createEngine(model, { engine: v.engine, backend: v.backend });
  const setupSeconds = (performance.now() - t0) / 1000;
  const batch = benchBatch(model.config.vocabSize);
  if (v.warmup) await engine.forward(batch);
  const t1 = performance.now();
  for (let i = 0; i < v.batches; i++) {
    const out = await engine.forward(batch);
    if (out.hiddenStates.length !== model.config.numHiddenLayers + 1 || out.attentions.some((a) => !a)) throw new Error('incomplete output');
  }
  const seconds = (performance.now() - t1) / 1000;
  const result: EngineBenchResult = {
    name: v.name,
    backend: `${engine.kind}/${engine.backend}`,
    tokensPerSecond: (v.batches * BATCH * SEQ) / seconds,
    secondsPerBatch: seconds / v.batches,
    batches: v.batches,
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
    r.secondsPerBatch.toFixed(2),
    r.peakRssMiB.toFixed(0),
    base ? `${(r.tokensPerSecond / base.tokensPerSecond).toFixed(2)}x` : 'n/a',
    r.setupSeconds.toFixed(1),
  ]);
  const header = ['variant', 'engine/backend', 'tokens/s', 's/batch', 'peak RSS MiB', 'vs tfjs-wasm', 'setup s'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => '  ' + r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
  const onnx = results.find((r) => r.name === 'onnx-cpu');
  if (onnx) console.log(`  onnx-cpu target (issue 4): >= 1000 tokens/s on 2 cores: ${onnx.tokensPerSecond >= 1000 ? 'met' : 'NOT met'} (${onnx.tokensPerSecond.toFixed(0)})`);
  const file = join(fileURLToPath(new URL('../..', import.meta.url)), '.bench', `engines-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'engines', date: new Date().toISOString(), batch: BATCH, seqLen: SEQ, cpus: (await import('node:os')).cpus().length, node: process.version, results });
  console.log(`  written: ${file}`);
  return results;
}

if (process.argv[2] === '--child') {
  const v = VARIANTS.find((x) => x.name === process.argv[3]);
  if (!v) throw new Error(`unknown variant ${process.argv[3]}`);
  await runChild(v);
}
