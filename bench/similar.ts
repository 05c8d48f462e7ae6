import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { padBatch, planBatches } from '../src/extract/batching.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { encodeForVectors, sentenceVectors, topKCosine, normalizeRows } from '../src/probes/sentence-vectors.js';
import { sentenceText } from '../src/probes/similarity-index.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * `npm run bench -- similar` (issue 13): the `similar` index build — bert-as-service sentence
 * vectors (layer −2, masked mean) of N sentences of the polarity corpus at bert-base shape
 * (random weights) — in sentences/s and peak RSS, beside the same engine's bare forward pass over
 * the same batches (the baseline: what pooling and indexing cost on top), measured in one child
 * process; then top-10 query latency over the index, ours (brute-force cosine in JS) beside
 * numpy's (index @ q, argpartition) when python3 has numpy.
 *
 *   BENCH_SIMILAR_SIZE=10000 (default) · BENCH_SIMILAR_QUERIES=100
 */
const SIZE = Number(process.env.BENCH_SIMILAR_SIZE ?? 10000);
const QUERIES = Number(process.env.BENCH_SIMILAR_QUERIES ?? 100);

interface ChildResult {
  sentences: number;
  tokens: number;
  indexSeconds: number;
  forwardOnlySeconds: number;
  peakRssMiB: number;
  queryMsMedian: number;
  indexFile: string;
  queryFile: string;
  dim: number;
}

async function child(dir: string): Promise<void> {
  const model = await loadModel('random', { seed: 42, offline: true });
  const engine = await createEngine(model, {});
  const full = await loadCorpus('polarity', { offline: true });
  const texts = full.sentences.slice(0, SIZE).map(sentenceText);
  const layer = model.config.numHiddenLayers - 1;
  const H = model.config.hiddenSize;
  // Baseline: the bare forward pass over the same length-bucketed batches (hidden state only).
  const seqs = texts.map((t) => encodeForVectors(model, t));
  const t0 = performance.now();
  for (const b of planBatches(seqs.map((s) => s.length), 16, 16 * 128)) {
    await engine.forward(padBatch(b.map((i) => seqs[i]!), model.tokenizer.padId), { hiddenStates: [layer], attentions: [] });
  }
  const forwardOnlySeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const vecs = await sentenceVectors(engine, model, texts, { layers: [layer], pooling: 'mean', excludeSpecial: false, batchSize: 16 });
  const index = normalizeRows(vecs.get(layer)!, H);
  const indexSeconds = (performance.now() - t1) / 1000;
  const queries = index.slice(0, QUERIES * H);
  const times: number[] = [];
  for (let q = 0; q < QUERIES; q++) {
    const s = performance.now();
    topKCosine(index, H, queries.subarray(q * H, (q + 1) * H), 10);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const indexFile = join(dir, 'index.safetensors');
  const queryFile = join(dir, 'queries.safetensors');
  writeSafetensors(indexFile, { index: { dtype: 'F32', shape: [texts.length, H], data: index } });
  writeSafetensors(queryFile, { queries: { dtype: 'F32', shape: [QUERIES, H], data: queries } });
  await engine.dispose();
  const result: ChildResult = { sentences: texts.length, tokens: seqs.reduce((a, s) => a + s.length, 0), indexSeconds, forwardOnlySeconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, queryMsMedian: times[Math.floor(times.length / 2)]!, indexFile, queryFile, dim: H };
  process.stdout.write(JSON.stringify(result) + '\n');
}

export async function benchSimilar(): Promise<unknown> {
  const self = fileURLToPath(import.meta.url);
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const env = { ...process.env, BERT_PROBE_DATA_MIRROR: process.env.BERT_PROBE_DATA_MIRROR ?? join(root, '..', 'shared', 'data') };
  const dir = mkdtempSync(join(tmpdir(), 'bert-probe-bench-similar-'));
  try {
    console.log(`\nsimilar: index of ${SIZE} polarity sentences, random bert-base shape, layer −2 masked mean; top-10 over ${QUERIES} queries (load average ${loadavg()[0]!.toFixed(1)})`);
    const c = spawnSync(process.execPath, [self, '--child', dir], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
    const line = c.stdout.trim().split('\n').pop() ?? '';
    if (c.status !== 0 || !line.startsWith('{')) {
      console.log(`  failed (exit ${c.status})`);
      return null;
    }
    const r = JSON.parse(line) as ChildResult;
    console.log(`  index build: ${r.sentences} sentences (${r.tokens} pieces) in ${r.indexSeconds.toFixed(1)} s = ${(r.sentences / r.indexSeconds).toFixed(1)} sentences/s; bare forward over the same batches ${r.forwardOnlySeconds.toFixed(1)} s (index build / forward = ${(r.indexSeconds / r.forwardOnlySeconds).toFixed(2)}×); peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
    let numpyMs: number | null = null;
    const script = join(root, 'bench', 'peers', 'similar_topk.py');
    const py = spawnSync('python3', [script, r.indexFile, r.queryFile], { encoding: 'utf8' });
    if (py.status === 0) numpyMs = Number(py.stdout.trim());
    else console.log(`  numpy peer not run: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
    console.log(`  query top-10 over ${r.sentences} × ${r.dim}: median ${r.queryMsMedian.toFixed(2)} ms${numpyMs !== null ? `; numpy ${numpyMs.toFixed(2)} ms (ours / numpy = ${(r.queryMsMedian / numpyMs).toFixed(2)}×)` : ''} (load average ${loadavg()[0]!.toFixed(1)})`);
    const file = join(root, '.bench', `similar-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeJsonAtomic(file, { bench: 'similar', date: new Date().toISOString(), loadavg: loadavg(), ...r, numpyQueryMsMedian: numpyMs });
    console.log(`  written: ${file}`);
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === '--child') await child(process.argv[3]!);
