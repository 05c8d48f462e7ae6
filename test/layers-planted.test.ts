/**
 * Issue 10's planted test, fed through `--activations`: stores written by the test itself (the
 * documented format, piece level) whose word labels are linearly readable only from layer k on
 * (noise below k, the cleanest signal at k, noisier above) → E_Δ within 0.5 of k, the mix weights
 * peaked at k, single-layer F1 near chance below k.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { writeSafetensors } from '../src/model/safetensors.js';
import { expectedLayer } from '../src/probes/edge-scores.js';
import { mulberry32 } from '../src/util/random.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

const H = 16;
const L = 3; // hidden states 0..3, as the fixture model (the runner takes the layer count from --model)
const K_LAYER = 2;
const TAGS = ['NOUN', 'VERB', 'ADJ', 'ADV'];
const WORDS = 8;

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** One split: a CoNLL-U file of n sentences and its piece-level store (one piece per word). */
function plantSplit(dir: string, name: string, n: number, seed: number): { conllu: string; store: string } {
  const rand = mulberry32(seed);
  const lines: string[] = [];
  const pieces: number[][] = Array.from({ length: L + 1 }, () => []);
  const words: number[][] = Array.from({ length: L + 1 }, () => []);
  for (let i = 0; i < n; i++) {
    const tags = Array.from({ length: WORDS }, () => TAGS[Math.floor(rand() * TAGS.length)]!);
    lines.push(`# sent_id = ${name}-${i}`);
    tags.forEach((t, j) => lines.push([j + 1, `w${(i * 7 + j) % 50}`, '_', t, '_', '_', j === 0 ? 0 : 1, j === 0 ? 'root' : 'dep', '_', '_'].join('\t')));
    lines.push('');
    for (let l = 0; l <= L; l++) {
      for (let p = 0; p < WORDS + 2; p++) {
        const v = Array.from({ length: H }, () => gaussian(rand) * (l > K_LAYER ? 2 : 1));
        if (l >= K_LAYER && p >= 1 && p <= WORDS) v[TAGS.indexOf(tags[p - 1]!)]! += 4;
        pieces[l]!.push(...v);
        if (p >= 1 && p <= WORDS) words[l]!.push(...v);
      }
    }
  }
  const conllu = join(dir, `${name}.conllu`);
  writeFileSync(conllu, lines.join('\n') + '\n');
  const store = join(dir, `${name}-store`);
  for (let l = 0; l <= L; l++) {
    mkdirSync(join(store, `layer.${l}`), { recursive: true });
    mkdirSync(join(store, `pieces.${l}`), { recursive: true });
    writeSafetensors(join(store, `layer.${l}`, 'shard-00000.safetensors'), { vectors: { dtype: 'F32', shape: [n * WORDS, H], data: Float32Array.from(words[l]!) } });
    writeSafetensors(join(store, `pieces.${l}`, 'shard-00000.safetensors'), {
      vectors: { dtype: 'F32', shape: [n * (WORDS + 2), H], data: Float32Array.from(pieces[l]!) },
      piece_counts: { dtype: 'I32', shape: [n], data: new Array(n).fill(WORDS + 2) },
      word_spans: { dtype: 'I32', shape: [n * WORDS, 2], data: Array.from({ length: n * WORDS }, (_, k) => [(k % WORDS) + 1, (k % WORDS) + 2]).flat() },
    });
  }
  const layers = Array.from({ length: L + 1 }, (_, l) => l);
  writeFileSync(join(store, 'index.json'), JSON.stringify({ format: 'bert-probe-activations', version: 1, hiddenSize: H, layers, wordCounts: new Array(n).fill(WORDS), shardSize: n, pieceLayers: layers, pieceCounts: new Array(n).fill(WORDS + 2), model: 'planted' }));
  return { conllu, store };
}

test('planted through --activations: readable from layer k on → E_Δ ≈ k, mix weights peak at k, chance below k', () => {
  const dir = tempDir();
  const tr = plantSplit(dir, 'train', 240, 10);
  const dv = plantSplit(dir, 'dev', 60, 11);
  const te = plantSplit(dir, 'test', 60, 12);
  const out = join(dir, 'run');
  const r = runCli([
    'layers', '--task', 'pos', '--data', tr.conllu, '--train-split', tr.conllu, '--dev-split', dv.conllu, '--eval-split', te.conllu,
    '--activations', `train=${tr.store}`, `dev=${dv.store}`, `test=${te.store}`, '--model', join(fixturesDir, 'tiny-bert'),
    '--classifier', 'linear', '--max-steps', '300', '--val-interval', '50', '--batch-sentences', '16', '--learning-rate', '3e-3', '--seed', '1', '--out', out, '--json',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const rows = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const single = (l: number) => Number(rows.find((x) => x.mode === 'single' && x.layer === `layer.${l}`)!.f1);
  for (let l = 0; l < K_LAYER; l++) assert.ok(single(l) < 0.45, `single layer ${l}: F1 ${single(l)} near chance`);
  assert.ok(single(K_LAYER) > 0.8, `single layer k: F1 ${single(K_LAYER)}`);
  for (let l = K_LAYER + 1; l <= L; l++) assert.ok(single(l) > 0.5, `single layer ${l} (noisier): F1 ${single(l)}`);
  const cum = rows.filter((x) => x.mode === 'cumulative').map((x) => Number(x.f1));
  const e = expectedLayer(cum)!;
  assert.ok(Math.abs(e - K_LAYER) <= 0.5, `E_Δ ${e} (cumulative F1 ${cum.map((v) => v.toFixed(3)).join(', ')})`);
  const w = rows.filter((x) => x.mode === 'mix').map((x) => Number(x.mix_weight));
  assert.equal(w.indexOf(Math.max(...w)), K_LAYER, `mix weights ${w.map((v) => v.toFixed(3)).join(', ')}`);
  const summary = JSON.parse(r.stdout);
  const main = Object.values(summary.models)[0] as { expected_layer: number; center_of_gravity: number };
  assert.equal(main.expected_layer, e);
  assert.ok(main.center_of_gravity > 1.5 && main.center_of_gravity < 3.5, `E_s ${main.center_of_gravity}`);
});
