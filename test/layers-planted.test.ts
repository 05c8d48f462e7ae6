/**
 * Issue 10's planted test: word labels linearly readable only from layer k on (noise below k,
 * the cleanest signal at k, noisier above) → E_Δ within 0.5 of k, the mix weights peaked at k,
 * single-layer F1 near chance below k. The layers family runs on the runner's unit context with
 * an in-memory activation source holding the planted piece vectors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import type { ActivationSource, PieceBatch } from '../src/extract/request.js';
import type { SplitData, SplitName, UnitContext } from '../src/probes/contract.js';
import { expectedLayer } from '../src/probes/edge-scores.js';
import { LayersFamily, type LayersOptions } from '../src/probes/layers-family.js';
import { mulberry32 } from '../src/util/random.js';
import { Ui } from '../src/util/ui.js';

const H = 16;
const L = 4; // hidden states 0..4
const K_LAYER = 2;
const TAGS = ['A', 'B', 'C', 'D'];

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Sentences of 8 words; each word's tag is a function of nothing the noise layers show. */
function plant(n: number, seed: number): { sentences: Sentence[]; source: ActivationSource } {
  const rand = mulberry32(seed);
  const sentences: Sentence[] = [];
  const layers: Float32Array[][] = Array.from({ length: L + 1 }, () => []);
  for (let i = 0; i < n; i++) {
    const tags = Array.from({ length: 8 }, () => TAGS[Math.floor(rand() * 4)]!);
    sentences.push({ id: `s${seed}-${i}`, source: { file: 'planted', line: i + 1 }, words: tags.map((_, j) => `w${j}`), upos: tags });
    for (let l = 0; l <= L; l++) {
      const v = new Float32Array(10 * H); // [CLS] + 8 words + [SEP], one piece each
      for (let p = 0; p < 10; p++) {
        for (let h = 0; h < H; h++) v[p * H + h] = gaussian(rand) * (l > K_LAYER ? 2 : 1);
        if (l >= K_LAYER && p >= 1 && p <= 8) v[p * H + TAGS.indexOf(tags[p - 1]!)] += 4;
      }
      layers[l]!.push(v);
    }
  }
  const spans: [number, number][] = Array.from({ length: 8 }, (_, j) => [j + 1, j + 2]);
  const source: ActivationSource = {
    numSentences: n, hiddenSize: H, numHeads: 0, layers: Array.from({ length: L + 1 }, (_, l) => l), attentionLayers: [], rawAttentionLayers: [],
    wordCounts: sentences.map(() => 8), hasPieces: true, description: { kind: 'planted' },
    readWords: () => Promise.reject(new Error('word level not planted')),
    async readPieces(layer, ids): Promise<PieceBatch> {
      const vectors = new Float32Array(ids.length * 10 * H);
      ids.forEach((s, k) => vectors.set(layers[layer]![s]!, k * 10 * H));
      return { vectors, pieceCounts: ids.map(() => 10), wordSpans: ids.map(() => spans) };
    },
    readAttention: () => Promise.reject(new Error('none')),
    readRawAttention: () => Promise.reject(new Error('none')),
    hasAttention: () => false,
    close: async () => {},
  };
  return { sentences, source };
}

test('planted: readable from layer k on → E_Δ ≈ k, mix weights peak at k, chance below k', async () => {
  const opts = {
    task: 'pos', tagset: 'upos', layers: 'all', modes: ['single', 'mix', 'cumulative'], classifier: 'linear', spanPooling: 'attn',
    maxSteps: 300, valInterval: 50, batchSentences: 16, learningRate: 3e-3, seed: 1, data: 'planted', engine: 'onnx', device: 'cpu', batchSize: 8,
  } as unknown as LayersOptions;
  const family = new LayersFamily(opts);
  const splits = Object.fromEntries((['train', 'dev', 'test'] as SplitName[]).map((name, i) => {
    const { sentences, source } = plant(name === 'train' ? 240 : 60, 10 + i);
    return [name, { name, sentences, activations: source } satisfies SplitData];
  })) as Record<SplitName, SplitData>;
  const config = { numHiddenLayers: L } as never;
  const rows: Record<string, unknown>[] = [];
  for (const unit of family.units(opts, config)) {
    const ctx: UnitContext<LayersOptions> = { opts, unit, model: { label: 'planted', id: 'planted', randomInit: false }, splits, seed: 1, seedIndex: 0, ui: new Ui({ quiet: true }) } as UnitContext<LayersOptions>;
    rows.push(...(await family.runUnit(ctx)).rows);
  }
  const single = (l: number) => rows.find((r) => r.mode === 'single' && r.layer === `layer.${l}`)!.f1 as number;
  for (let l = 0; l < K_LAYER; l++) assert.ok(single(l) < 0.45, `single layer ${l}: F1 ${single(l)} near chance`);
  assert.ok(single(K_LAYER) > 0.8, `single layer k: F1 ${single(K_LAYER)}`);
  for (let l = K_LAYER + 1; l <= L; l++) assert.ok(single(l) > 0.5, `single layer ${l} (noisier): F1 ${single(l)}`);
  const cum = rows.filter((r) => r.mode === 'cumulative').map((r) => r.f1 as number);
  const e = expectedLayer(cum)!;
  assert.ok(Math.abs(e - K_LAYER) <= 0.5, `E_Δ ${e} (cumulative F1 ${cum.map((v) => v.toFixed(3)).join(', ')})`);
  const w = rows.filter((r) => r.mode === 'mix').map((r) => r.mix_weight as number);
  const peak = w.indexOf(Math.max(...w));
  assert.equal(peak, K_LAYER, `mix weights ${w.map((v) => v.toFixed(3)).join(', ')}`);
  const summary = family.summarize(rows, opts) as { models: Record<string, { expected_layer: number; center_of_gravity: number }> };
  assert.equal(summary.models.planted!.expected_layer, e);
});
