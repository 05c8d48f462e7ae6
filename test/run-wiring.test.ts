/**
 * Run wiring (issue 16 bug 3: a probe trained on the test split passed every test): the sentences
 * that train, select and evaluate are exactly the train, dev and test splits, and disjoint.
 *
 * 1. The runner (src/probes/runner.ts) hands a family the splits loadSplits made, each with the
 *    activations of its own sentences, and records their id hashes in the manifest.
 * 2. The structural family trains on train, selects on dev and scores test: with all-zero train
 *    vectors the probe's gradient is exactly zero, so the train loss of every epoch is the loss of a
 *    zero prediction on the *train* trees, the dev loss is the loss of the initial parameters on the
 *    *dev* vectors, and the predictions are those parameters applied to the *test* vectors.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import type { ActivationSource } from '../src/extract/request.js';
import type { ProbeFamily, RunnerOptions, SplitData, SplitName, UnitContext } from '../src/probes/contract.js';
import { idsHash, runProbe } from '../src/probes/runner.js';
import { structuralFamily, type StructuralOptions } from '../src/probes/structural-family.js';
import { treeDepths, treeDistances } from '../src/probes/trees.js';
import { mulberry32 } from '../src/util/random.js';
import { Ui } from '../src/util/ui.js';
import { FakeTokenizer } from './extract-fakes.js';
import { fixturesDir, repoRoot, tempDir } from './helpers.js';

const SPLITS: SplitName[] = ['train', 'dev', 'test'];

test('runner: a family gets exactly the train, dev and test sentences (disjoint), each with its own activations; the manifest records their ids', async () => {
  const data = join(repoRoot, 'test', 'fixtures', 'corpus', 'ptb-wsj');
  const expected = await loadSplits(data, { ui: new Ui({ quiet: true }) });
  const seen: Partial<Record<SplitName, string[]>> = {};
  const family: ProbeFamily<RunnerOptions> = {
    command: 'wiring',
    requires: ['trees'],
    activations: () => ({ layers: [0, 1], attentionLayers: [] }),
    units: () => [{ key: 'layer.1', label: 'layer.1', layers: [1], kind: 'layer' }],
    runUnit: async (ctx) => {
      for (const k of SPLITS) {
        const sp = ctx.splits[k];
        assert.equal(sp.name, k);
        seen[k] = sp.sentences.map((s) => s.id);
        assert.deepEqual([...sp.activations.wordCounts], sp.sentences.map((s) => s.words.length), `${k}: activations of the ${k} sentences`);
        const v = await sp.activations.readWords(1, sp.sentences.map((_, i) => i));
        assert.equal(v.length, sp.sentences.reduce((a, s) => a + s.words.length, 0) * sp.activations.hiddenSize);
      }
      return { rows: [{ unit: ctx.unit.label, n: 1 }], records: [] };
    },
    columns: ['unit', 'n'],
    columnDescriptions: { unit: 'unit', n: 'n' },
    summarize: () => ({}),
  };
  const out = join(tempDir(), 'run');
  const prev = process.env.BERT_PROBE_CACHE;
  process.env.BERT_PROBE_CACHE = join(tempDir(), 'cache');
  try {
    await runProbe(family, { model: join(fixturesDir, 'tiny-bert'), engine: 'onnx', device: 'cpu', batchSize: 4, seed: 1, data, out, quiet: true }, new Ui({ quiet: true }));
  } finally {
    if (prev === undefined) delete process.env.BERT_PROBE_CACHE;
    else process.env.BERT_PROBE_CACHE = prev;
  }
  for (const k of SPLITS) assert.deepEqual(seen[k], expected[k].sentences.map((s) => s.id), `${k} sentences`);
  const all = SPLITS.flatMap((k) => seen[k]!);
  assert.equal(new Set(all).size, all.length, 'the splits are disjoint');
  assert.deepEqual(seen.train!.map((id) => id.split('/').slice(-2, -1)[0]), ['02', '02'], 'train is section 02');
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  for (const k of SPLITS) assert.equal(manifest.data.splits[k].idsSha256, idsHash(expected[k].sentences), `${k} ids on record`);
});

/** A random tree over n words: word i > 0 attaches to a random earlier word (word 0 is the root). */
function randomSentence(id: string, n: number, rand: () => number): Sentence {
  const heads = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1 + Math.floor(rand() * i)));
  return { id, source: { file: id, line: 1 }, words: heads.map((_, i) => `w${i}`), heads, xpos: heads.map(() => 'NN') };
}

function source(sentences: Sentence[], hidden: number, fill: (i: number) => number): ActivationSource & { vectors: Float32Array[] } {
  const vectors = sentences.map((s) => Float32Array.from({ length: s.words.length * hidden }, (_, i) => fill(i)));
  return {
    vectors,
    numSentences: sentences.length,
    hiddenSize: hidden,
    numHeads: 0,
    layers: [0],
    attentionLayers: [],
    rawAttentionLayers: [],
    wordCounts: sentences.map((s) => s.words.length),
    hasPieces: false,
    description: { kind: 'test' },
    readWords: async (_layer, ids) => Float32Array.from(ids.flatMap((i) => [...vectors[i]!])),
    readPieces: () => Promise.reject(new Error('no pieces')),
    readAttention: () => Promise.reject(new Error('no attention')),
    readRawAttention: () => Promise.reject(new Error('no attention')),
    hasAttention: () => false,
    close: async () => {},
  };
}

/** t = h·proj per word (proj [hidden, rank], row-major), in float64. */
function project(v: Float32Array, n: number, proj: Float32Array, hidden: number): number[][] {
  const rank = proj.length / hidden;
  return Array.from({ length: n }, (_, i) => Array.from({ length: rank }, (_, r) => {
    let s = 0;
    for (let h = 0; h < hidden; h++) s += v[i * hidden + h]! * proj[h * rank + r]!;
    return s;
  }));
}
const sqDist = (a: number[], b: number[]) => a.reduce((s, x, k) => s + (x - b[k]!) ** 2, 0);
const sqNorm = (a: number[]) => a.reduce((s, x) => s + x * x, 0);

/** The structural loss (loss.py): per sentence Σ|pred − gold| / n² (distance) or / n (depth), mean over sentences. */
function loss(kind: 'distance' | 'depth', sentences: Sentence[], vectors: Float32Array[] | null, proj: Float32Array, hidden: number): number {
  let total = 0;
  sentences.forEach((s, k) => {
    const n = s.words.length;
    const t = vectors ? project(vectors[k]!, n, proj, hidden) : null;
    let sum = 0;
    if (kind === 'distance') {
      const d = treeDistances(s.heads!);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sum += Math.abs((t ? sqDist(t[i]!, t[j]!) : 0) - d[i * n + j]!);
      total += sum / (n * n);
    } else {
      const z = treeDepths(s.heads!);
      for (let i = 0; i < n; i++) sum += Math.abs((t ? sqNorm(t[i]!) : 0) - z[i]!);
      total += sum / n;
    }
  });
  return total / sentences.length;
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);

test('structural family: trains on train, selects on dev, scores test (zero train vectors make each split visible in the losses)', async () => {
  const rand = mulberry32(9);
  const hidden = 6;
  const sentences = {
    train: Array.from({ length: 7 }, (_, i) => randomSentence(`train-${i}`, 5 + (i % 4), rand)),
    dev: Array.from({ length: 4 }, (_, i) => randomSentence(`dev-${i}`, 6 + i, rand)),
    test: Array.from({ length: 5 }, (_, i) => randomSentence(`test-${i}`, 5 + i, rand)),
  };
  const sources = {
    train: source(sentences.train, hidden, () => 0),
    dev: source(sentences.dev, hidden, () => rand() * 2 - 1),
    test: source(sentences.test, hidden, () => rand() * 3 - 1.5),
  };
  const split = (k: SplitName): SplitData => ({ name: k, sentences: sentences[k], activations: sources[k] });
  const splits: Record<SplitName, SplitData> = { train: split('train'), dev: split('dev'), test: split('test') };
  const opts: StructuralOptions = { layers: '0', probe: 'both', maxEpochs: 3, engine: 'auto', device: 'cpu', batchSize: 8, seed: 5, data: 'test', saveDistances: true };
  const ctx: UnitContext<StructuralOptions> = { opts, unit: { key: 'layer.0', label: 'layer.0', layers: [0], kind: 'layer' }, model: { label: 'm', id: 'm', randomInit: false, tokenizer: new FakeTokenizer() }, splits, seed: 5, seedIndex: 0, threads: 1, ui: new Ui({ quiet: true }) };
  const r = await structuralFamily.runUnit(ctx);
  const training = r.training as Record<'distance' | 'depth', { history: { trainLoss: number; devLoss: number }[] }>;
  for (const kind of ['distance', 'depth'] as const) {
    const proj = r.params!.values[r.params!.names.indexOf(`${kind}.proj`)]!;
    const trainLoss = loss(kind, sentences.train, null, proj, hidden);
    const devLoss = loss(kind, sentences.dev, sources.dev.vectors, proj, hidden);
    const onTest = loss(kind, sentences.test, sources.test.vectors, proj, hidden);
    assert.ok(rel(devLoss, onTest) > 1e-3 && rel(trainLoss, devLoss) > 1e-3, 'the splits give different losses');
    const h = training[kind].history;
    assert.ok(h.length >= 2, `${kind}: ${h.length} epochs`);
    for (const e of h) {
      assert.ok(rel(e.trainLoss, trainLoss) < 1e-5, `${kind} train loss ${e.trainLoss}: the train trees give ${trainLoss}`);
      assert.ok(rel(e.devLoss, devLoss) < 1e-4, `${kind} dev loss ${e.devLoss}: the dev split gives ${devLoss} (the test split ${onTest})`);
    }
  }
  // Scored on test: one record per test sentence, predictions from the kept parameters on the test vectors.
  assert.deepEqual(r.records.map((x) => x.id), sentences.test.map((s) => s.id));
  assert.ok(r.rows.every((row) => row.sentences === sentences.test.length));
  const depthProj = r.params!.values[r.params!.names.indexOf('depth.proj')]!;
  const distProj = r.params!.values[r.params!.names.indexOf('distance.proj')]!;
  r.records.forEach((rec, k) => {
    const n = sentences.test[k]!.words.length;
    const tz = project(sources.test.vectors[k]!, n, depthProj, hidden);
    const td = project(sources.test.vectors[k]!, n, distProj, hidden);
    (rec.predicted_depths as number[]).forEach((v, i) => assert.ok(rel(v, sqNorm(tz[i]!)) < 1e-4, `test ${k} depth ${i}`));
    (rec.predicted_distances as number[][]).forEach((row, i) => row.forEach((v, j) => assert.ok(i === j || rel(v, sqDist(td[i]!, td[j]!)) < 1e-4, `test ${k} distance ${i},${j}`)));
  });
});
