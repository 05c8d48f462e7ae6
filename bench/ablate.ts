import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { TfjsBert } from '../src/model/bert-tfjs.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import { headGradients, importanceScores } from '../src/probes/ablate-importance.js';
import { fitting, GRADIENT_MAX_TOKENS, maskSentences, mlmScore, mlmSet } from '../src/probes/ablate-mlm.js';
import { leastImportant } from '../src/probes/ablate-prune.js';
import { prunedSpeed } from '../src/probes/ablate-speed.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Head ablation cost (issue 12) at bert-base shape: the random-init model of bert-base-uncased's
 * shape (with its tied MLM head; timing does not depend on the weights' values), the first N
 * sentences of EWT's test split, batches of 16, the ONNX engine on CPU.
 *
 *   - single-head ablation: the masked-LM loss of the set once per masked head (the baseline
 *     pass first); BENCH_ABLATE_HEADS heads are timed, and all 144 extrapolated from them
 *   - the importance pass (michel recipe: one forward + backward through tfjs per batch of at
 *     most 512 tokens) on the first BENCH_ABLATE_IMPORTANCE_SENTENCES sentences
 *   - the pruned graph at 50% of the heads pruned (importance order): tokens/s against the full
 *     graph in the same process, and its largest difference from the head-masked full model
 *
 *   npm run bench -- ablate
 *   BENCH_ABLATE_SENTENCES=200 BENCH_ABLATE_HEADS=144 BENCH_ABLATE_IMPORTANCE_SENTENCES=200
 *       the issue's full size (hours on 2 shared cores; minutes where tfjs-node or a GPU is there)
 *
 * Default size: 20 sentences, 24 heads timed, importance on 8 sentences — a few minutes on 2
 * cores. Figures are printed with the 1-minute load average and CPU seconds, as the machine is
 * shared.
 */
const SENTENCES = Number(process.env.BENCH_ABLATE_SENTENCES ?? 20);
const HEADS = Number(process.env.BENCH_ABLATE_HEADS ?? 24);
const IMPORTANCE_SENTENCES = Number(process.env.BENCH_ABLATE_IMPORTANCE_SENTENCES ?? 8);
const BATCH = 16;
const SEED = 42;

export async function benchAblate(): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel('random', { seed: SEED, offline: true });
  const corpus = await loadCorpus('ewt:test', { offline: true });
  const { kept } = fitting(corpus.sentences.slice(0, SENTENCES).map((s) => model.tokenizer.encodeWords(s.words)), model.config.maxPositionEmbeddings);
  const set = mlmSet(maskSentences(kept, { seed: SEED, mode: '80-10-10', maskId: model.tokenizer.maskId, vocabSize: model.config.vocabSize }), BATCH, model.tokenizer.padId);
  const total = model.config.numHiddenLayers * model.config.numAttentionHeads;
  const heads = Math.min(HEADS, total);
  const engine = await OnnxEngine.create(model);
  const setupSeconds = (performance.now() - t0) / 1000;
  console.log(`\nablate: random bert-base-uncased shape, EWT test first ${set.examples.length} sentences (${set.tokens} pieces, ${set.pieces} predicted), batches of ${BATCH}, onnx ${engine.backend}; setup ${setupSeconds.toFixed(1)} s`);
  try {
    const ones = new Float32Array(total).fill(1);
    let t = performance.now();
    const baseline = (await mlmScore(engine, set, ones)).loss;
    const baselineSeconds = (performance.now() - t) / 1000;
    console.log(`  baseline pass: ${baselineSeconds.toFixed(1)} s (loss ${baseline.toFixed(4)}); load average ${loadavg()[0]!.toFixed(1)}`);

    t = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < heads; i++) {
      const m = Float32Array.from(ones);
      m[i] = 0;
      await mlmScore(engine, set, m);
      if ((i + 1) % 12 === 0 || i + 1 === heads) console.log(`  single-head ablation: ${i + 1}/${heads} heads, ${((performance.now() - t) / 1000).toFixed(0)} s`);
    }
    const ablationSeconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const ablationLoad = loadavg()[0]!;
    console.log(`  single-head ablation of ${heads} heads: ${ablationSeconds.toFixed(1)} s (${(ablationSeconds / heads).toFixed(2)} s per head, ${((cpu.user + cpu.system) / 1e6 / heads).toFixed(2)} CPU s per head); load average ${ablationLoad.toFixed(1)}`);
    if (heads < total) console.log(`  all ${total} heads at this rate (extrapolated, not measured): ${((ablationSeconds / heads) * total / 60).toFixed(1)} min`);

    const runtime = await selectTfjsBackend();
    const bert = new TfjsBert(runtime.tf, model.config, model.weights, true);
    t = performance.now();
    const gradSet = mlmSet(set.examples.slice(0, IMPORTANCE_SENTENCES), BATCH, model.tokenizer.padId, GRADIENT_MAX_TOKENS);
    const g = await headGradients(bert, gradSet, ones);
    const importanceSeconds = (performance.now() - t) / 1000;
    bert.dispose();
    const imp = importanceScores(g, 'michel', model.config.numHiddenLayers, model.config.numAttentionHeads);
    console.log(`  importance pass (michel, tfjs ${runtime.label}, ${gradSet.examples.length} sentences, ${gradSet.tokens} pieces): ${importanceSeconds.toFixed(1)} s; load average ${loadavg()[0]!.toFixed(1)}`);

    const mask = Float32Array.from(ones);
    for (const i of leastImportant(imp.score, ones).slice(0, total / 2)) mask[i] = 0;
    const speed = await prunedSpeed(model, engine, set.batches.map((b) => b.batch), mask, 3);
    console.log(
      `  pruned graph, ${speed.headsPruned} of ${total} heads pruned: ${speed.prunedTokensPerSecond.toFixed(0)} tokens/s vs full ${speed.fullTokensPerSecond.toFixed(0)} tokens/s = ${speed.speedup.toFixed(2)}x; max |pruned - masked| ${speed.maxAbsDiff.toExponential(1)}; load average ${loadavg()[0]!.toFixed(1)}`,
    );
    const result = {
      bench: 'ablate',
      date: new Date().toISOString(),
      cpus: cpus().length,
      node: process.version,
      shape: 'bert-base-uncased (random init)',
      sentences: set.examples.length,
      tokens: set.tokens,
      predictedPieces: set.pieces,
      batch: BATCH,
      engine: engine.backend,
      baselinePassSeconds: Number(baselineSeconds.toFixed(2)),
      ablationHeads: heads,
      ablationSeconds: Number(ablationSeconds.toFixed(1)),
      ablationSecondsPerHead: Number((ablationSeconds / heads).toFixed(3)),
      ablationCpuSecondsPerHead: Number(((cpu.user + cpu.system) / 1e6 / heads).toFixed(3)),
      ablationLoadAverage: ablationLoad,
      importanceBackend: runtime.label,
      importanceSentences: gradSet.examples.length,
      importanceSeconds: Number(importanceSeconds.toFixed(1)),
      pruned: { headsPruned: speed.headsPruned, fullTokensPerSecond: Math.round(speed.fullTokensPerSecond), prunedTokensPerSecond: Math.round(speed.prunedTokensPerSecond), speedup: Number(speed.speedup.toFixed(3)), maxAbsDiff: speed.maxAbsDiff, fullSeconds: speed.fullSeconds, prunedSeconds: speed.prunedSeconds },
      loadAverageAtEnd: loadavg(),
    };
    const file = join(fileURLToPath(new URL('../..', import.meta.url)), '.bench', `ablate-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeJsonAtomic(file, result);
    console.log(`  written: ${file}`);
  } finally {
    await engine.dispose();
  }
}
