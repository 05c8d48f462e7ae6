import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { extractWithReport } from '../src/extract/pipeline.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Extraction benchmark (issue 4): a random model of bert-base-uncased shape, all 13 hidden
 * states pooled to words, for the first 1,000 and the first 5,000 sentences of UD English EWT
 * train (through the data mirror: BERT_PROBE_DATA_MIRROR, default ../shared/data). Each size
 * runs in its own child process so its peak RSS (ru_maxrss) is its own (after a first child has
 * built and cached the engine, so neither measured run pays for the graph build); the store goes to a
 * temporary folder that is removed afterwards. Targets: peak RSS < 2.5 GB for both and within
 * 10% of each other (memory does not grow with the corpus).
 *
 *   npm run bench extract        BENCH_EXTRACT_SIZES=200,1000 to change the sizes
 */
const SIZES = (process.env.BENCH_EXTRACT_SIZES ?? '1000,5000').split(',').map(Number);
const DATA = process.env.BENCH_EXTRACT_DATA ?? 'ewt:train';

interface ExtractBenchResult {
  sentences: number;
  words: number;
  tokens: number;
  seconds: number;
  forwardSeconds: number;
  tokensPerSecond: number;
  peakRssMiB: number;
  engine: string;
  windowed: number;
}

async function runChild(n: number): Promise<void> {
  const model = await loadModel('random', { seed: 42, offline: true });
  const engine = await createEngine(model, {});
  const full = await loadCorpus(DATA, { offline: true });
  if (full.sentences.length < n) throw new Error(`${DATA} has only ${full.sentences.length} sentences`);
  const corpus = { ...full, id: `${full.id}[0:${n}]`, sentences: full.sentences.slice(0, n) };
  const dir = mkdtempSync(join(tmpdir(), 'bert-probe-bench-extract-'));
  try {
    const layers = [...Array(model.config.numHiddenLayers + 1).keys()];
    const { store, report } = await extractWithReport({ model, engine, corpus, request: { layers, attentionLayers: [] }, storeDir: join(dir, 'store') });
    const result: ExtractBenchResult = {
      sentences: n,
      words: store.wordCounts.reduce((a, b) => a + b, 0),
      tokens: report.tokens,
      seconds: report.seconds,
      forwardSeconds: report.forwardSeconds,
      tokensPerSecond: report.tokensPerSecond,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      engine: `${engine.kind}/${engine.backend}`,
      windowed: report.windowed,
    };
    await engine.dispose();
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Build (and cache) the engine once, so every measured child finds the same cached ONNX graph. */
async function prepareChild(): Promise<void> {
  const model = await loadModel('random', { seed: 42, offline: true });
  const engine = await createEngine(model, {});
  await engine.dispose();
}

export async function benchExtract(): Promise<ExtractBenchResult[]> {
  const self = fileURLToPath(import.meta.url);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const env = { ...process.env, BERT_PROBE_DATA_MIRROR: process.env.BERT_PROBE_DATA_MIRROR ?? join(root, '..', 'shared', 'data') };
  console.log(`\nextract: random bert-base-uncased shape, 13 hidden states pooled to words (mean), ${DATA}, sizes ${SIZES.join(', ')}`);
  const results: ExtractBenchResult[] = [];
  const prep = spawnSync(process.execPath, [self, '--prepare'], { encoding: 'utf8', env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (prep.status !== 0) console.log(`  engine preparation failed (exit ${prep.status}); measuring anyway`);
  for (const n of SIZES) {
    process.stdout.write(`  ${n} sentences: running ...\n`);
    const child = spawnSync(process.execPath, ['--expose-gc', self, '--child', String(n)], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    const line = child.stdout.trim().split('\n').pop() ?? '';
    if (child.status !== 0 || !line.startsWith('{')) {
      console.log(`  ${n} sentences: failed (exit ${child.status}${child.signal ? `, ${child.signal}` : ''})`);
      continue;
    }
    results.push(JSON.parse(line) as ExtractBenchResult);
  }
  const header = ['sentences', 'words', 'tokens', 'seconds', 'in forward', 'tokens/s', 'peak RSS MiB', 'engine'];
  const rows = results.map((r) => [String(r.sentences), String(r.words), String(r.tokens), r.seconds.toFixed(1), `${((100 * r.forwardSeconds) / r.seconds).toFixed(0)}%`, r.tokensPerSecond.toFixed(0), r.peakRssMiB.toFixed(0), r.engine]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => '  ' + r.map((c, i) => (i < 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
  if (results.length >= 2) {
    const rss = results.map((r) => r.peakRssMiB);
    const max = Math.max(...rss), min = Math.min(...rss);
    console.log(`  peak RSS < 2.5 GB: ${max < 2.5 * 1024 ? 'met' : 'NOT met'} (max ${max.toFixed(0)} MiB); within 10% across sizes: ${(max - min) / min <= 0.1 ? 'met' : 'NOT met'} (${(((max - min) / min) * 100).toFixed(1)}%)`);
  }
  const file = join(root, '.bench', `extract-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'extract', date: new Date().toISOString(), data: DATA, cpus: (await import('node:os')).cpus().length, node: process.version, results });
  console.log(`  written: ${file}`);
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--child') await runChild(Number(process.argv[3]));
  else if (process.argv[2] === '--prepare') await prepareChild();
}
