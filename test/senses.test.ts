/**
 * Word senses and WSD (issue 13): clustering metrics and nearest-centroid WSD against hand
 * computation; a hand-made SemCor file whose two senses are separable by construction gives
 * purity 1 and ARI 1 at every layer, with maps that repeat under the same seed; and both modes
 * end to end on SemCor through the mirror.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { adjustedRandIndex, purity } from '../src/probes/cluster-metrics.js';
import { findOccurrences, SenseCentroids, wsdScores } from '../src/probes/senses.js';
import type { Sentence } from '../src/corpus/types.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

test('purity and adjusted Rand index equal hand computation', () => {
  // scikit-learn's documented example: adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) ≈ 0.5714
  // contingency: n_ij = {2, 1, 1} → Σ C(n_ij,2) = 1; a = (2, 2) → 2; b = (2, 1, 1) → 1; C(4,2) = 6
  // ARI = (1 − 2·1/6) / (½(2 + 1) − 2·1/6) = (2/3) / (7/6) = 4/7
  assert.ok(Math.abs(adjustedRandIndex([0, 0, 1, 2], [0, 0, 1, 1]) - 4 / 7) < 1e-12);
  assert.equal(adjustedRandIndex([1, 1, 0, 0], ['a', 'a', 'b', 'b']), 1, 'a relabelled identical partition');
  assert.equal(adjustedRandIndex([0, 0, 0], ['x', 'x', 'x']), 1);
  // purity: clusters {0: a a b}, {1: b c} → (2 + 1) / 5
  assert.ok(Math.abs(purity([0, 0, 0, 1, 1], ['a', 'a', 'b', 'b', 'c']) - 3 / 5) < 1e-12);
  // a partition that agrees less than chance scores below 0: [0,1,0,1] vs [a,a,b,b]
  // n_ij all 1 → 0; a = (2,2) → 2; b = (2,2) → 2; expected = 4/6; max = 2 → (0 − 2/3)/(2 − 2/3) = −1/2
  assert.ok(Math.abs(adjustedRandIndex([0, 1, 0, 1], ['a', 'a', 'b', 'b']) + 0.5) < 1e-12);
});

test('nearest-centroid WSD and its P/R/F1 equal hand computation', () => {
  const c = new SenseCentroids(2);
  // bank: sense r (river) around direction (1, 0), sense m (money) around (0, 1)
  c.add('bank', 'bank%r', Float32Array.from([2, 0]));
  c.add('bank', 'bank%r', Float32Array.from([1, 1])); // centroid (1.5, 0.5)
  c.add('bank', 'bank%m', Float32Array.from([0, 3])); // centroid (0, 3)
  c.add('bank', 'bank%m', Float32Array.from([0, 1]));
  c.add('bank', 'bank%m', Float32Array.from([1, 2])); // m has 3 examples: the most frequent sense
  assert.equal(c.mostFrequent('bank'), 'bank%m');
  // (1, 0.2): cos to (1.5,0.5) = (1.5+0.1)/(√1.04·√2.5) ≈ 0.992; to m's mean (1/3, 2) ≈ 0.26 → r
  assert.equal(c.predict('bank', Float32Array.from([1, 0.2])), 'bank%r');
  // (0.5, 1): cos to r ≈ (0.75+0.5)/(√1.25·√2.5) ≈ 0.707; to m (1/3,2): (1/6+2)/(√1.25·√(37/9)) ≈ 0.956 → m
  assert.equal(c.predict('bank', Float32Array.from([0.5, 1])), 'bank%m');
  assert.equal(c.predict('river', Float32Array.from([1, 0])), null, 'unseen lemma: not attempted');
  // 4 test items: r✓, m✓, m✗ (gold r), unattempted → P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2)/(2/3 + 1/2) = 4/7
  const s = wsdScores([
    { gold: 'bank%r', predicted: 'bank%r' },
    { gold: 'bank%m', predicted: 'bank%m' },
    { gold: 'bank%r', predicted: 'bank%m' },
    { gold: 'river%x', predicted: null },
  ]);
  assert.deepEqual([s.attempted, s.correct, s.total], [3, 2, 4]);
  assert.ok(Math.abs(s.f1! - 4 / 7) < 1e-12);
});

test('occurrences: first per sentence, by sense lemma where tagged, by form elsewhere', () => {
  const s = (words: string[], senses?: Sentence['senses']): Sentence => ({ id: 'x', source: { file: 'f', line: 1 }, words, ...(senses ? { senses } : {}) });
  const occ = findOccurrences([
    s(['Fair', 'is', 'fair']),
    s(['the', 'fairs', 'were', 'fair'], [null, { lemma: 'fair', wnsn: '1', lexsn: '1:04:00::' }, null, null]),
    s(['no', 'match']),
  ], 'fair');
  assert.deepEqual(occ, [
    { sentence: 0, word: 0, sense: null },
    { sentence: 1, word: 1, sense: 'fair%1:04:00::' },
  ]);
});

function semcorFile(dir: string): string {
  const wf = (w: string, sense?: string) => (sense ? `<wf cmd=done pos=NN lemma=bank wnsn=${sense === 'river' ? 1 : 2} lexsn=1:17:0${sense === 'river' ? 1 : 2}::>${w}</wf>` : `<wf cmd=ignore pos=DT>${w}</wf>`);
  const lines = ['<contextfile concordance=brown>', '<context filename=doc1 paras=yes>', '<p pnum=1>'];
  let n = 0;
  // Separable by construction: every river occurrence has the same context and position, every
  // money occurrence another; at each layer the vectors are equal within a sense.
  for (let i = 0; i < 4; i++) {
    lines.push(`<s snum=${++n}>`, wf('the'), wf('river'), wf('bank', 'river'), wf('flooded'), '<punc>.</punc>', '</s>');
    lines.push(`<s snum=${++n}>`, wf('she'), wf('robbed'), wf('the'), wf('central'), wf('bank', 'money'), wf('yesterday'), '<punc>.</punc>', '</s>');
  }
  lines.push('</p>', '</context>', '</contextfile>');
  const f = join(dir, 'bank.semcor');
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

test('two senses separable by construction: purity 1 and ARI 1 at every layer; maps repeat under --seed', () => {
  const dir = tempDir();
  const file = semcorFile(dir);
  const args = ['senses', '--word', 'bank', '--data', file, '--format', 'semcor', '--model', join(fixturesDir, 'tiny-bert'), '--seed', '7'];
  const a = runCli([...args, '--out', join(dir, 'a'), '--json']);
  assert.equal(a.status, 0, a.stderr);
  const rows = parse(readFileSync(join(dir, 'a', 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  assert.equal(rows.length, 4);
  for (const r of rows) {
    assert.equal(r.occurrences, '8');
    assert.equal(r.senses, '2');
    assert.equal(Number(r.purity), 1, `${r.layer} purity`);
    assert.equal(Number(r.ari), 1, `${r.layer} ARI`);
  }
  const b = runCli([...args, '--out', join(dir, 'b')]);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(readFileSync(join(dir, 'b', 'predictions.jsonl'), 'utf8'), readFileSync(join(dir, 'a', 'predictions.jsonl'), 'utf8'), 'UMAP, PCA and k-means repeat with the same seed');
  const summary = JSON.parse(a.stdout);
  assert.equal(summary.best_layer.ari, 1);

  const none = runCli(['senses', '--word', 'zebra', '--data', file, '--format', 'semcor', '--model', join(fixturesDir, 'tiny-bert'), '--out', join(dir, 'c')]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /"zebra" occurs nowhere/);
  const neither = runCli(['senses', '--data', file, '--model', join(fixturesDir, 'tiny-bert'), '--out', join(dir, 'd')]);
  assert.equal(neither.status, 2);
});

test('senses --word fair and --wsd on SemCor through the mirror', () => {
  const dir = tempDir();
  const m = join(fixturesDir, 'tiny-bert');
  const w = runCli(['senses', '--word', 'fair', '--data', 'semcor', '--model', m, '--out', join(dir, 'w'), '--json']);
  assert.equal(w.status, 0, w.stderr);
  const ws = JSON.parse(w.stdout);
  assert.ok(ws.occurrences >= 20, `fair occurs ${ws.occurrences} times`);
  assert.ok(ws.senses.length >= 2);
  const wsd = runCli(['senses', '--wsd', '--data', 'semcor', '--limit', '600', '--model', m, '--out', join(dir, 'x'), '--json']);
  assert.equal(wsd.status, 0, wsd.stderr);
  // every F1 recomputed from predictions.jsonl
  const rows = parse(readFileSync(join(dir, 'x', 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const preds = readFileSync(join(dir, 'x', 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const r of rows) {
    const s = wsdScores(preds.map((p) => ({ gold: p.gold, predicted: p.predicted[r.layer!] })));
    assert.equal(Number(r.f1), s.f1, r.layer);
    assert.equal(Number(r.total), preds.length);
  }
  const mfs = wsdScores(preds.map((p) => ({ gold: p.gold, predicted: p.mfs })));
  assert.equal(Number(rows[0]!.mfs_f1), mfs.f1);
});
