import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Ort from 'onnxruntime-node';
import { loadCorpus } from '../src/corpus/load.js';
import { padBatch, planBatches } from '../src/extract/batching.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine, graphCachePath, loadOrt } from '../src/model/onnx-engine.js';
import { buildEncoderGraph } from '../src/model/onnx-graph.js';
import type { Precision } from '../src/model/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * `npm run bench -- onnx-graphs` (issue 14): the forward pass alone, graph variant against graph
 * variant, in one process. Every session is open at once and every batch runs on each of them in
 * turn (the order rotated per batch and round), so a change in the machine's load hits all
 * variants alike; a variant's figure is the sum over batches of that batch's fastest time over
 * the rounds. Batches: the first N sentences of EWT dev (default 300) in `extract`'s batches of
 * 16, bert-base shape (random weights, seed 42), all 13 hidden states fetched.
 *
 * Variants per precision: the full graph (attention maps, head mask) at onnxruntime's level
 * 'all' (its SkipLayerNormalization fusion) and at 'basic' (what the engine uses), and the
 * hidden-states graph (fused MultiHeadAttention) at 'basic'. Ratios are to the first variant.
 *
 *   taskset -c 1 npm run bench -- onnx-graphs     (one core, one thread)
 *   BENCH_GRAPHS_SENTENCES=300 BENCH_GRAPHS_ROUNDS=4 BENCH_GRAPHS_PRECISIONS=int8 BENCH_GRAPHS_ATTENTION=1 (fetch the attention maps too, where the graph has them)
 */
const SENTENCES = Number(process.env.BENCH_GRAPHS_SENTENCES ?? 300);
const ROUNDS = Number(process.env.BENCH_GRAPHS_ROUNDS ?? 4);
const PRECISIONS = (process.env.BENCH_GRAPHS_PRECISIONS ?? 'fp32,int8').split(',') as Precision[];
const ATTENTION = process.env.BENCH_GRAPHS_ATTENTION === '1';
const BATCH = 16;

interface Variant {
  name: string;
  session: Ort.InferenceSession;
  fetches: string[];
  best: number[];
}

export async function benchOnnxGraphs(): Promise<unknown> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  process.env.BERT_PROBE_DATA_MIRROR ??= join(root, '..', 'shared', 'data');
  const threads = availableParallelism();
  console.log(`\nonnx-graphs: bert-base shape, ewt:dev first ${SENTENCES} sentences in batches of ${BATCH}, ${threads} intra-op thread(s), ${ROUNDS} rounds interleaved batch by batch${ATTENTION ? ', attention maps fetched' : ''}`);
  const model = await loadModel('random', { seed: 42, offline: true });
  const corpus = await loadCorpus('ewt:dev', { offline: true });
  const ids = corpus.sentences.slice(0, SENTENCES).map((s) => model.tokenizer.encodeWords(s.words).ids);
  const batches = planBatches(ids.map((x) => x.length), BATCH, BATCH * 128).map((p) => padBatch(p.map((i) => ids[i]!), model.tokenizer.padId));
  const ort = await loadOrt();
  const results: { precision: Precision; variant: string; seconds: number; ratio: number }[] = [];
  for (const precision of PRECISIONS) {
    // Builds and caches the full graph (and for int8 the hidden-states graph) as extraction would.
    await (await OnnxEngine.create(model, { precision })).dispose();
    const hiddenPath = graphCachePath(model, 'hidden', precision);
    const hiddenSource = precision === 'int8' ? hiddenPath : buildEncoderGraph(model.config, model.weights, undefined, { precision, attentionOutputs: false });
    const open = async (name: string, source: string | Uint8Array, level: 'all' | 'basic'): Promise<Variant> => {
      const opts: Ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: level, extra: { session: { intra_op: { allow_spinning: '0' } } }, logSeverityLevel: 3 };
      const session = typeof source === 'string' ? await ort.InferenceSession.create(source, opts) : await ort.InferenceSession.create(source, opts);
      const fetches = session.outputNames.filter((n) => n.startsWith('layer.') || (ATTENTION && n.startsWith('attn.')));
      return { name, session, fetches, best: batches.map(() => Infinity) };
    };
    const fullPath = graphCachePath(model, 'encoder', precision);
    const variants = [await open('full graph, level all', fullPath, 'all'), await open('full graph, level basic (engine)', fullPath, 'basic'), await open(`hidden-states graph, level basic${precision === 'int8' ? ' (engine)' : ''}`, hiddenSource, 'basic')];
    const la0 = loadavg()[0]!;
    for (let r = 0; r < ROUNDS; r++) {
      for (let bi = 0; bi < batches.length; bi++) {
        const b = batches[bi]!;
        const shape = [b.batchSize, b.seqLen];
        const i64 = (a: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), shape);
        for (let k = 0; k < variants.length; k++) {
          const v = variants[(k + r + bi) % variants.length]!;
          const feeds: Record<string, Ort.Tensor> = { input_ids: i64(b.inputIds), attention_mask: i64(b.attentionMask), token_type_ids: i64(b.tokenTypeIds) };
          if (v.session.inputNames.includes('head_mask')) feeds.head_mask = new ort.Tensor('float32', new Float32Array(model.config.numHiddenLayers * model.config.numAttentionHeads).fill(1), [model.config.numHiddenLayers, model.config.numAttentionHeads]);
          const t0 = performance.now();
          await v.session.run(feeds, v.fetches);
          v.best[bi] = Math.min(v.best[bi]!, (performance.now() - t0) / 1000);
        }
      }
    }
    const base = variants[0]!.best.reduce((a, b) => a + b, 0);
    for (const v of variants) {
      const seconds = v.best.reduce((a, b) => a + b, 0);
      results.push({ precision, variant: v.name, seconds, ratio: base / seconds });
      console.log(`  ${precision}  ${v.name.padEnd(40)} ${seconds.toFixed(3)} s  ${(base / seconds).toFixed(3)}x`);
      await v.session.release();
    }
    console.log(`  (load average ${la0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)})`);
  }
  const file = join(root, '.bench', `onnx-graphs-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'onnx-graphs', date: new Date().toISOString(), sentences: SENTENCES, rounds: ROUNDS, threads, attention: ATTENTION, batches: batches.length, results });
  console.log(`  written: ${file}`);
  return results;
}
