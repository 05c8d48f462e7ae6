/**
 * `npm run bench -- trainer` (issue 9): our probe trainer (src/probes/trainer.ts trainProbe on
 * graphs derived by src/probes/graph, run by onnxruntime) against the same model in PyTorch
 * (bench/peers/trainer.py) on data of the same shape, in the same run, as ratios.
 *
 * (a) distance: Hewitt & Manning's distance probe, 768-d vectors, rank 768, batches of 20, on
 *     the PTB sample's train and dev sentences: their real lengths and tree distances, the word
 *     vectors seeded standard normals (timing does not depend on the values). Seconds per epoch
 *     = one shuffled pass over train (loss, gradient, Adam) + the dev loss, as the regimen runs.
 *     PyTorch: structural-probes' formulation (X·proj on the padded batch, L1DistanceLoss) with
 *     distances in Gram form.
 * (b) mlp: Tenney's classifier (768→256 Tanh LayerNorm Dropout(0.3) →17, sigmoid BCE, Adam 1e-4,
 *     clip 5) on 200,000 × 768 seeded normal examples in batches of 32; seconds per epoch =
 *     one shuffled pass over the examples (no validation).
 *
 * (c) stack (ours only, issue 9 item 7): the probes of K layers sharing each batch — K separate
 *     loss-and-gradient runs, K runs issued concurrently, or one graph holding the K probes —
 *     per step, for Tenney's MLP (K = 13, batches of 32) and the distance probe (K = 3).
 *
 * Both sides use the same number of threads (the machine's parallelism). Environment:
 *   BENCH_TRAINER_EPOCHS (default 3 for (a), 1 for (b); the first epoch of each side is
 *   reported apart as warm-up and the rest averaged), BENCH_TRAINER_TASKS=distance,mlp,stack,
 *   BENCH_TRAINER_MLP_EXAMPLES (default 200000), BENCH_TRAINER_THREADS.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { mlp, mlpParams, sigmoidBce } from '../src/probes/blocks.js';
import { compileProbe, initParams, type ProbeDefinition } from '../src/probes/probe-model.js';
import { structuralDefinition, structuralFeeds } from '../src/probes/structural-train.js';
import { trainProbe, type Batch } from '../src/probes/trainer.js';
import { treeDistances, treeProblem } from '../src/probes/trees.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { mulberry32, shuffled } from '../src/util/random.js';

const HIDDEN = 768;
const THREADS = Number(process.env.BENCH_TRAINER_THREADS ?? availableParallelism());
const TASKS = (process.env.BENCH_TRAINER_TASKS ?? 'distance,mlp,stack').split(',');
const MLP_EXAMPLES = Number(process.env.BENCH_TRAINER_MLP_EXAMPLES ?? 200_000);
const PEER = fileURLToPath(new URL('../../bench/peers/trainer.py', import.meta.url)); // from dist/bench/

function normals(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const t = 2 * Math.PI * rand();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

function torchAvailable(): string | null {
  const r = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Run the PyTorch peer on a spec; its epoch times, or null with the reason printed. */
interface Times {
  wall: number[];
  cpu: number[];
}

function runPeer(spec: Record<string, unknown>): Times | null {
  const dir = mkdtempSync(join(tmpdir(), 'bench-trainer-'));
  try {
    const file = join(dir, 'spec.json');
    writeFileSync(file, JSON.stringify(spec));
    // OMP_WAIT_POLICY=PASSIVE: no busy-waiting OpenMP threads, as our onnxruntime sessions
    // run without spinning (on a loaded machine spinning costs PyTorch up to 10× here).
    const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
    const r = spawnSync('python3', [PEER, file], { encoding: 'utf8', maxBuffer: 1 << 26, env });
    if (r.status !== 0) {
      console.log(`  PyTorch peer failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      return null;
    }
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { epoch_seconds: number[]; epoch_cpu_seconds: number[] };
    return { wall: out.epoch_seconds, cpu: out.epoch_cpu_seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mean of the epochs after the first (the first when there is only one). */
function steady(times: number[]): number {
  const rest = times.length > 1 ? times.slice(1) : times;
  return rest.reduce((a, b) => a + b, 0) / rest.length;
}

/** Wall and CPU seconds (all threads of the process) of each epoch, from onEpoch calls. */
class EpochClock {
  readonly times: Times = { wall: [], cpu: [] };
  private t = performance.now();
  private c = process.cpuUsage();
  lap(): number {
    const t = performance.now();
    const c = process.cpuUsage();
    this.times.wall.push((t - this.t) / 1000);
    this.times.cpu.push((c.user + c.system - this.c.user - this.c.system) / 1e6);
    this.t = t;
    this.c = c;
    return this.times.wall[this.times.wall.length - 1]!;
  }
}

function report(label: string, ours: Times, peer: Times | null, goal: number): Record<string, unknown> {
  const o = steady(ours.wall);
  const oc = steady(ours.cpu);
  const fmt = (xs: number[]) => xs.map((t) => t.toFixed(2)).join(', ');
  const line = [`  ours: ${o.toFixed(2)} s/epoch wall, ${oc.toFixed(2)} CPU s (epochs ${fmt(ours.wall)})`];
  const out: Record<string, unknown> = { task: label, oursSecondsPerEpoch: o, oursCpuSecondsPerEpoch: oc, oursEpochs: ours, loadAverage: loadavg() };
  if (peer) {
    const p = steady(peer.wall);
    const pc = steady(peer.cpu);
    const ratio = p / o;
    line.push(`  PyTorch: ${p.toFixed(2)} s/epoch wall, ${pc.toFixed(2)} CPU s (epochs ${fmt(peer.wall)})`);
    line.push(`  ratio (PyTorch time / ours): wall ${ratio.toFixed(2)}× — goal ≥ ${goal}× ${ratio >= goal ? 'met' : 'NOT met'}; CPU time ${(pc / oc).toFixed(2)}×`);
    Object.assign(out, { peerSecondsPerEpoch: p, peerCpuSecondsPerEpoch: pc, peerEpochs: peer, ratio, cpuRatio: pc / oc, goal });
  }
  line.push(`  load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(line.join('\n'));
  return out;
}

/** A PTB sentence with a valid tree, its synthetic word vectors [n, 768]. */
interface Example {
  sentence: Sentence;
  vectors: Float32Array;
}

/** One batch: the sentences' vectors concatenated (unpadded) and structural-train.ts's feeds. */
function structuralBatch(items: readonly Example[]): Batch {
  const words = items.reduce((a, e) => a + e.sentence.words.length, 0);
  const x = new Float32Array(words * HIDDEN);
  let w = 0;
  for (const e of items) {
    x.set(e.vectors, w * HIDDEN);
    w += e.sentence.words.length;
  }
  return structuralFeeds(items.map((e) => e.sentence), x, 'distance', HIDDEN);
}

async function benchDistance(torchVersion: string | null): Promise<Record<string, unknown>> {
  const epochs = Number(process.env.BENCH_TRAINER_EPOCHS ?? 3);
  const splits = await loadSplits('ptb', { offline: true });
  const rand = mulberry32(42);
  const examples = (sentences: Sentence[]): Example[] => sentences.filter((s) => s.heads && !treeProblem(s.heads)).map((s) => ({ sentence: s, vectors: normals(s.words.length * HIDDEN, rand) }));
  const train = examples(splits.train.sentences);
  const dev = examples(splits.dev.sentences);
  const words = train.reduce((a, e) => a + e.sentence.words.length, 0);
  console.log(`\ntrainer (a): distance probe, ${HIDDEN}-d, rank ${HIDDEN}, PTB sample ${train.length} train sentences (${words} words, synthetic normal vectors), ${dev.length} dev; batches of 20; ${epochs} epochs; ${THREADS} threads`);
  const def = structuralDefinition('distance', HIDDEN, HIDDEN);
  async function* batchesOf(items: readonly Example[]): AsyncIterable<Batch> {
    for (let i = 0; i < items.length; i += 20) yield structuralBatch(items.slice(i, i + 20));
  }
  const probe = await compileProbe(def, { threads: THREADS });
  const params = initParams(def, 42);
  const shuffleRand = mulberry32(7);
  const devSorted = [...dev].sort((a, b) => a.sentence.words.length - b.sentence.words.length);
  const clock = new EpochClock();
  await trainProbe({
    probe, params, maxEpochs: epochs, patience: epochs + 1,
    train: () => batchesOf(shuffled(train, shuffleRand)),
    dev: () => batchesOf(devSorted),
    onEpoch: (e) => console.log(`  ours epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(3)}, dev loss ${e.devLoss.toFixed(3)}, ${clock.lap().toFixed(2)} s`),
  });
  await probe.dispose();
  let peer: Times | null = null;
  if (torchVersion) {
    peer = runPeer({
      task: 'distance', threads: THREADS, epochs, seed: 42, hidden: HIDDEN, rank: HIDDEN, batch_size: 20,
      train: { lengths: train.map((e) => e.sentence.words.length), distances: train.map((e) => Array.from(treeDistances(e.sentence.heads!))) },
      dev: { lengths: dev.map((e) => e.sentence.words.length), distances: dev.map((e) => Array.from(treeDistances(e.sentence.heads!))) },
    });
  }
  return report('distance', clock.times, peer, 1.5);
}

async function benchMlp(torchVersion: string | null): Promise<Record<string, unknown>> {
  const epochs = Number(process.env.BENCH_TRAINER_EPOCHS ?? 1);
  const n = MLP_EXAMPLES;
  const classes = 17;
  const bs = 32;
  console.log(`\ntrainer (b): Tenney MLP ${HIDDEN}→256→${classes}, sigmoid BCE, Adam 1e-4, clip 5, dropout 0.3, ${n} × ${HIDDEN} synthetic examples, batches of ${bs}; ${epochs} epoch(s); ${THREADS} threads`);
  const rand = mulberry32(3);
  const x = normals(n * HIDDEN, rand);
  const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * classes));
  const def: ProbeDefinition = {
    name: 'tenney_mlp',
    params: mlpParams('mlp', HIDDEN, 256, classes),
    inputs: [
      { name: 'x', shape: ['n', HIDDEN] },
      { name: 'targets', shape: ['n', classes] },
    ],
    build: (g, p, i) => {
      const logits = mlp(g, i.x!, p, 'mlp', { dropout: 0.3, maskName: 'dropout' });
      return { loss: sigmoidBce(g, logits, i.targets!), outputs: { logits } };
    },
  };
  const probe = await compileProbe(def, { threads: THREADS });
  const params = initParams(def, 1);
  const order = Array.from({ length: n }, (_, i) => i);
  const shuffleRand = mulberry32(11);
  async function* trainBatches(): AsyncIterable<Batch> {
    const perm = shuffled(order, shuffleRand);
    for (let i = 0; i < n; i += bs) {
      const idx = perm.slice(i, i + bs);
      const xb = new Float32Array(idx.length * HIDDEN);
      const tb = new Float32Array(idx.length * classes);
      idx.forEach((r, k) => {
        xb.set(x.subarray(r * HIDDEN, (r + 1) * HIDDEN), k * HIDDEN);
        tb[k * classes + labels[r]!] = 1;
      });
      yield { count: idx.length, feeds: { x: { data: xb, dims: [idx.length, HIDDEN] }, targets: { data: tb, dims: [idx.length, classes] } } };
    }
  }
  // Validation here costs one tiny batch: the bench times the training pass.
  const devBatch: Batch = { count: 1, feeds: { x: { data: x.subarray(0, HIDDEN), dims: [1, HIDDEN] }, targets: { data: new Float32Array(classes), dims: [1, classes] } } };
  const clock = new EpochClock();
  await trainProbe({
    probe, params, learningRate: 1e-4, gradClipNorm: 5, seed: 5, maxEpochs: epochs, patience: epochs + 1,
    train: trainBatches,
    dev: async function* () {
      yield devBatch;
    },
    onEpoch: (e) => console.log(`  ours epoch ${e.epoch + 1}: train loss ${e.trainLoss.toFixed(4)}, ${clock.lap().toFixed(2)} s`),
  });
  await probe.dispose();
  let peer: Times | null = null;
  if (torchVersion) peer = runPeer({ task: 'mlp', threads: THREADS, epochs, seed: 42, examples: n, hidden: HIDDEN, mlp_hidden: 256, classes, batch_size: bs });
  return report('mlp', clock.times, peer, 1.0);
}

/** K copies of a definition in one graph: params and inputs prefixed `uK.` except `shared` inputs; loss = Σ. */
function stackDefinitions(def: ProbeDefinition, K: number, shared: string[]): ProbeDefinition {
  const name = (k: number, n: string) => (shared.includes(n) ? n : `u${k}.${n}`);
  return {
    name: `${def.name}_x${K}`,
    params: Array.from({ length: K }, (_, k) => def.params.map((p) => ({ ...p, name: name(k, p.name) }))).flat(),
    inputs: [...def.inputs.filter((i) => shared.includes(i.name)), ...Array.from({ length: K }, (_, k) => def.inputs.filter((i) => !shared.includes(i.name)).map((i) => ({ ...i, name: name(k, i.name) }))).flat()],
    build(g, p, i, mode) {
      let loss: import('../src/probes/graph/types.js').Value | null = null;
      for (let k = 0; k < K; k++) {
        const pk = Object.fromEntries(def.params.map((q) => [q.name, p[name(k, q.name)]!]));
        const ik = Object.fromEntries(def.inputs.map((q) => [q.name, i[name(k, q.name)]!]));
        const l = def.build(g, pk, ik, mode).loss;
        loss = loss ? g.add(loss, l) : l;
      }
      return { loss: loss!, outputs: {} };
    },
  };
}

async function benchStack(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const rand = mulberry32(9);
  const cases = [
    { label: 'mlp', K: 13, def: (): ProbeDefinition => ({ name: 'mlp', params: mlpParams('mlp', HIDDEN, 256, 17), inputs: [{ name: 'x', shape: ['n', HIDDEN] }, { name: 'targets', shape: ['n', 17] }], build: (g, p, i) => ({ loss: sigmoidBce(g, mlp(g, i.x!, p, 'mlp', { dropout: 0, maskName: 'unused' }), i.targets!), outputs: {} }) }), feeds: (): Record<string, import('../src/probes/graph/types.js').Feed> => ({ x: { data: normals(32 * HIDDEN, rand), dims: [32, HIDDEN] }, targets: { data: new Float32Array(32 * 17), dims: [32, 17] } }), shared: ['targets'], steps: 100 },
    {
      label: 'distance', K: 3,
      def: (): ProbeDefinition => structuralDefinition('distance', HIDDEN, HIDDEN),
      feeds: () => {
        // 20 sentences of 5–49 words (chains: tree distances |i − j|).
        const items: Example[] = Array.from({ length: 20 }, (_, k) => {
          const n = 5 + ((k * 7) % 45);
          const sentence = { id: String(k), words: Array.from({ length: n }, () => 'w'), heads: Array.from({ length: n }, (_, i) => i) } as unknown as Sentence;
          return { sentence, vectors: normals(n * HIDDEN, rand) };
        });
        return structuralBatch(items).feeds;
      },
      shared: ['rows', 'target', 'mask', 'norm'], steps: 10,
    },
  ];
  for (const c of cases) {
    console.log(`\ntrainer (c): ${c.K} ${c.label} probes per batch (ours only): separate runs, concurrent runs, one graph`);
    const def = c.def();
    const single = await compileProbe(def, { threads: THREADS });
    const stacked = await compileProbe(stackDefinitions(def, c.K, c.shared), { threads: THREADS });
    const p1 = initParams(def, 1);
    const pK = initParams(stacked.definition, 1);
    const f1 = c.feeds();
    const fK: Record<string, import('../src/probes/graph/types.js').Feed> = {};
    for (const [k, v] of Object.entries(f1)) {
      if (c.shared.includes(k)) fK[k] = v;
      else for (let u = 0; u < c.K; u++) fK[`u${u}.${k}`] = v;
    }
    const variants: [string, () => Promise<unknown>][] = [
      ['separate', async () => { for (let u = 0; u < c.K; u++) await single.lossAndGrad(p1, f1); }],
      ['concurrent', () => Promise.all(Array.from({ length: c.K }, () => single.lossAndGrad(p1, f1)))],
      ['one graph', () => stacked.lossAndGrad(pK, fK)],
    ];
    const res: Record<string, { wallMs: number; cpuMs: number }> = {};
    for (let round = 0; round < 2; round++) {
      for (const [name, f] of variants) {
        await f();
        const clock = new EpochClock();
        for (let s = 0; s < c.steps; s++) await f();
        clock.lap();
        const r = { wallMs: (clock.times.wall[0]! * 1000) / c.steps, cpuMs: (clock.times.cpu[0]! * 1000) / c.steps };
        if (round === 1) {
          res[name] = r;
          console.log(`  ${name}: ${r.wallMs.toFixed(2)} ms wall, ${r.cpuMs.toFixed(2)} CPU ms per step of ${c.K} probes`);
        }
      }
    }
    console.log(`  load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    out[c.label] = res;
    await single.dispose();
    await stacked.dispose();
  }
  return { task: 'stack', ...out, loadAverage: loadavg() };
}

export async function benchTrainer(): Promise<void> {
  const torchVersion = torchAvailable();
  if (!torchVersion) console.log('\ntrainer: python3 cannot import torch, so the PyTorch peer is not run (pip install --no-deps a torch wheel from $PIP_FIND_LINKS); our times only');
  else console.log(`\ntrainer: PyTorch ${torchVersion} peer (bench/peers/trainer.py), onnxruntime-node for ours`);
  const results: Record<string, unknown>[] = [];
  if (TASKS.includes('distance')) results.push(await benchDistance(torchVersion));
  if (TASKS.includes('mlp')) results.push(await benchMlp(torchVersion));
  if (TASKS.includes('stack')) results.push(await benchStack());
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const file = join(root, '.bench', `trainer-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'trainer', date: new Date().toISOString(), threads: THREADS, node: process.version, torch: torchVersion, results });
  console.log(`  written: ${file}`);
}
