import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSplits } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { writeSafetensors } from '../src/model/safetensors.js';
import { mulberry32 } from '../src/util/random.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

/**
 * A planted-structure test fed through --activations (issue 9, must show): the test writes a
 * treebank of random trees and, per split, a store in docs/store-format.md's minimal format whose
 * layer.1 vectors carry the tree exactly — each word is the sum of one orthogonal unit vector per
 * edge on its path from the root (e_c for child c), so ‖hᵢ − hⱼ‖² is the tree distance and ‖hᵢ‖²
 * the depth — and whose layer.0 is noise. The structural probe, run by the CLI on these stores,
 * must recover the trees from layer.1 and not from layer.0.
 */
const HIDDEN = 32; // tiny-bert's hidden size (the runner reads the model's config)

/** Random trees; with `twoRootsEvery` k, every k-th sentence has a second root (the structural family drops it). */
function randomTreebank(n: number, rand: () => number, twoRootsEvery = 0): string {
  const out: string[] = [];
  for (let s = 0; s < n; s++) {
    const len = 4 + Math.floor(rand() * 12);
    const order = [...Array(len).keys()].sort(() => rand() - 0.5);
    const head = new Array<number>(len).fill(0);
    for (let k = 1; k < len; k++) head[order[k]!] = order[Math.floor(rand() * k)]! + 1; // attach to an earlier-placed word
    if (twoRootsEvery && s % twoRootsEvery === twoRootsEvery - 1) head[order[len - 1]!] = 0;
    out.push(`# sent_id = t${s}`);
    for (let i = 0; i < len; i++) out.push([i + 1, `w${(s * 7 + i) % 50}`, '_', 'NOUN', 'NN', '_', head[i], head[i] ? 'dep' : 'root', '_', '_'].join('\t'));
    out.push('');
  }
  return out.join('\n') + '\n';
}

/** One sentence's vectors [words, HIDDEN]: layer 1 carries its tree, layer 0 is noise. */
function plantedVectors(s: Sentence, layer: number, rand: () => number): number[] {
  const heads = s.heads!;
  const rows: number[] = [];
  for (let i = 0; i < heads.length; i++) {
    const v = new Array<number>(HIDDEN).fill(0);
    if (layer === 1) for (let c = i; c >= 0 && heads[c]! > 0; c = heads[c]! - 1) v[c] = 1; // edges root..i
    else for (let d = 0; d < HIDDEN; d++) v[d] = rand() * 2 - 1;
    rows.push(...v);
  }
  return rows;
}

function plantedStore(dir: string, sentences: readonly Sentence[], rand: () => number): void {
  const vec = (layer: number): Float32Array => Float32Array.from(sentences.flatMap((s) => plantedVectors(s, layer, rand)));
  for (const l of [0, 1]) {
    mkdirSync(join(dir, `layer.${l}`), { recursive: true });
    const v = vec(l);
    writeSafetensors(join(dir, `layer.${l}`, 'shard-00000.safetensors'), { vectors: { dtype: 'F32', shape: [v.length / HIDDEN, HIDDEN], data: v } });
  }
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ format: 'bert-probe-activations', version: 1, hiddenSize: HIDDEN, layers: [0, 1], wordCounts: sentences.map((s) => s.words.length), shardSize: 100000, model: 'planted' }));
}

test('structural --activations: a planted tree geometry in a test-written store is recovered (layer.1), noise is not (layer.0)', async () => {
  const root = tempDir();
  const rand = mulberry32(3);
  const data = join(root, 'trees.conllu');
  writeFileSync(data, randomTreebank(80, rand));
  const splits = await loadSplits(data, { offline: true });
  const dirs = Object.fromEntries((['train', 'dev', 'test'] as const).map((k) => {
    const dir = join(root, k);
    plantedStore(dir, splits[k].sentences, rand);
    return [k, dir];
  }));
  const out = join(root, 'run');
  const args = ['structural', '--data', data, '--model', join(fixturesDir, 'tiny-bert'), '--layers', '1', '--probe', 'distance', '--max-epochs', '30', '--out', out,
    '--activations', `train=${dirs.train}`, `dev=${dirs.dev}`, `test=${dirs.test}`];
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  const csv = readFileSync(join(out, readdirSync(out).includes('results.csv') ? '' : readdirSync(out)[0]!, 'results.csv'), 'utf8').trim().split('\n');
  const cols = csv[0]!.split(',');
  const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
  const uuas = (layer: string) => Number(rows.find((x) => x.layer === layer && (x.probe ?? 'distance') === 'distance')?.uuas);
  console.log(`# planted UUAS: layer.1 ${uuas('layer.1').toFixed(3)}, layer.0 (noise) ${uuas('layer.0').toFixed(3)}`);
  assert.ok(uuas('layer.1') > 0.9, `layer.1 UUAS ${uuas('layer.1')}`);
  assert.ok(uuas('layer.1') > uuas('layer.0') + 0.3, `layer.0 UUAS ${uuas('layer.0')}`);
  // The wrong split's store: sentence counts differ, exit 2 naming the split.
  const bad = runCli([...args.slice(0, -3), `train=${dirs.train}`, `dev=${dirs.test}`, `test=${dirs.test}`, '--out', join(root, 'bad')]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /dev/);
});

test('structural --activations with structural-probes hdf5 files of the whole split: the sentences the family drops are skipped by position', async () => {
  const root = tempDir();
  const rand = mulberry32(5);
  const data = join(root, 'trees.conllu');
  writeFileSync(data, randomTreebank(90, rand, 9)); // every 9th sentence has two roots: not a tree
  const splits = await loadSplits(data, { offline: true });
  const h5 = await import('h5wasm/node');
  await h5.ready;
  const files = Object.fromEntries((['train', 'dev', 'test'] as const).map((k) => {
    // Their layout: one dataset per sentence of the split's file, [layers, words, dim]; rows noise, planted.
    const path = join(root, `${k}.hdf5`);
    const f = new h5.File(path, 'w');
    splits[k].sentences.forEach((s, i) => {
      const n = s.words.length;
      f.create_dataset({ name: String(i), data: Float32Array.from([...plantedVectors(s, 0, rand), ...plantedVectors(s, 1, rand)]), shape: [2, n, HIDDEN], dtype: '<f' });
    });
    f.close();
    return [k, path];
  }));
  const dropped = (['train', 'dev', 'test'] as const).reduce((a, k) => a + splits[k].sentences.filter((s) => s.heads!.filter((h) => h === 0).length > 1).length, 0);
  assert.ok(dropped > 0, 'some sentences are not trees');
  const out = join(root, 'run');
  const args = ['structural', '--data', data, '--model', join(fixturesDir, 'tiny-bert'), '--layers', '1', '--probe', 'distance', '--max-epochs', '30', '--out', out,
    '--activations', `train=${files.train}`, `dev=${files.dev}`, `test=${files.test}`];
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  const csv = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n');
  const cols = csv[0]!.split(',');
  const rows = csv.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
  const uuas = (layer: string) => Number(rows.find((x) => x.layer === layer && x.probe === 'distance')?.uuas);
  assert.ok(uuas('layer.1') > 0.9, `layer.1 UUAS ${uuas('layer.1')} (a misaligned sentence would break it)`);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.match(JSON.stringify(manifest.activations), /the sentences the probe keeps/);
  // --activations-first-layer 1: the file's rows become layer.1 and layer.2, so layer.0 is missing (exit 2).
  const shifted = runCli([...args.map((a) => (a === out ? join(root, 'shifted') : a)), '--activations-first-layer', '1']);
  assert.equal(shifted.status, 2, shifted.stderr);
  assert.match(shifted.stderr, /no layer\.0[\s\S]*layers 1, 2/);
});
