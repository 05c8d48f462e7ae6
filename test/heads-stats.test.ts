/** Issue 11: Clark et al.'s surface statistics, head accuracy, head distances and Coenen's pair vectors on hand-computed cases. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wordAttention } from '../src/extract/align.js';
import { samplePairs, pairFeatures, pairFeatureCount } from '../src/probes/attention-pairs.js';
import { SurfaceAccumulator } from '../src/probes/attention-stats.js';
import { attentionHeadPredictions, offsetPredictions, RelationCounts, BASELINE_OFFSETS, DIRECTIONS } from '../src/probes/head-accuracy.js';
import { classicalMds, HeadDivergence } from '../src/probes/head-distances.js';
import { mulberry32 } from '../src/util/random.js';

const close = (a: number, b: number, eps = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= eps, `${what} ${a} != ${b}`);
/** Smoothed entropy of one row, written out independently of the implementation. */
const rowEntropy = (row: number[]) => row.reduce((s, a) => {
  const p = 0.9999 * a + 0.0001 / row.length;
  return s - p * Math.log(p);
}, 0);

test('surface statistics and entropies at piece level equal hand computation', () => {
  // Sentence 1: [CLS] a . [SEP]; head 0 hand-made, head 1 the identity.
  const h0 = [
    [0.5, 0.2, 0.1, 0.2],
    [0.1, 0.3, 0.4, 0.2],
    [0.25, 0.25, 0.25, 0.25],
    [0, 0, 0, 1],
  ];
  const h1 = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  // Sentence 2: [CLS] x [SEP], both heads uniform.
  const u = [[1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]];
  const acc = new SurfaceAccumulator(2);
  acc.add([...h0.flat(), ...h1.flat()], ['[CLS]', 'a', '.', '[SEP]']);
  acc.add([...u.flat(), ...u.flat()], ['[CLS]', 'x', '[SEP]']);
  const r = acc.result();
  assert.equal(r.sentences, 2);
  // Head 0, sentence 1 by hand: column sums / 4, diagonals / 4; sentence 2: 1/3 everywhere.
  const s1 = { cls: 0.85 / 4, sep: 1.65 / 4, punct: 0.75 / 4, self: 2.05 / 4, next: 0.85 / 4, prev: 0.35 / 4, sep_sep: 1, rest_sep: 0.65 / 3 };
  const s2 = { cls: 1 / 3, sep: 1 / 3, punct: 0, self: 1 / 3, next: (2 / 3) / 3, prev: (2 / 3) / 3, sep_sep: 1 / 3, rest_sep: (2 / 3) / 2 };
  for (const k of Object.keys(s1) as (keyof typeof s1)[]) close(r.attention[k][0]!, (s1[k] + s2[k]) / 2, 1e-12, `head 0 ${k}`);
  const i1 = { cls: 0.25, sep: 0.25, punct: 0.25, self: 1, next: 0, prev: 0, sep_sep: 1, rest_sep: 0 };
  for (const k of Object.keys(i1) as (keyof typeof i1)[]) close(r.attention[k][1]!, (i1[k] + s2[k]) / 2, 1e-12, `head 1 ${k}`);
  const ent1 = h0.map(rowEntropy).reduce((a, b) => a + b) / 4;
  close(r.entropy[0]!, (ent1 + Math.log(3)) / 2, 1e-9, 'entropy');
  close(r.clsEntropy[0]!, (rowEntropy(h0[0]!) + Math.log(3)) / 2, 1e-9, 'cls entropy');
  // Identity rows: 0.999925 once and 0.000025 three times.
  const idEnt = -(0.999925 * Math.log(0.999925) + 3 * 0.000025 * Math.log(0.000025));
  close(r.entropy[1]!, (idEnt + Math.log(3)) / 2, 1e-9, 'identity entropy');
  close(r.uniformEntropy, (Math.log(4) + Math.log(3)) / 2, 1e-12, 'uniform');
  assert.throws(() => acc.add([1, 2, 3], ['[CLS]', '[SEP]']), RangeError);
});

test('word-level attention from split words: mean (paper) and first (released code)', () => {
  // [CLS] a1 a2 b [SEP]; word a = pieces 1-2, word b = piece 3. One head.
  const P = 5;
  const att = new Float32Array([
    0.2, 0.2, 0.2, 0.2, 0.2,
    0.1, 0.3, 0.2, 0.3, 0.1,
    0.3, 0.1, 0.1, 0.1, 0.4,
    0.0, 0.5, 0.25, 0.25, 0.0,
    1, 0, 0, 0, 0,
  ]);
  const spans: [number, number][] = [[1, 3], [3, 4]];
  const mean = wordAttention(att, 1, P, spans, 'mean');
  const first = wordAttention(att, 1, P, spans, 'first');
  // Row of a, mean: ([0.1, 0.5, 0.3, 0.1] + [0.3, 0.2, 0.1, 0.4]) / 2; first: piece a1's row with columns a1+a2 summed.
  [0.2, 0.35, 0.2, 0.25].forEach((v, j) => close(mean[4 + j]!, v, 1e-6, `mean a→${j}`));
  [0.1, 0.5, 0.3, 0.1].forEach((v, j) => close(first[4 + j]!, v, 1e-6, `first a→${j}`));
  // Rows of unsplit words are the same either way; attention TO a is the sum of its pieces.
  [0, 0.75, 0.25, 0].forEach((v, j) => close(first[8 + j]!, v, 1e-6, `b→${j}`));
  assert.deepEqual([...mean.slice(8)], [...first.slice(8)]);
});

// "John 's dog barks ." Stanford Dependencies: John -poss-> dog, 's -possessive-> John,
// dog -nsubj-> barks, barks = root, . -punct-> barks.
const WORDS = ['John', "'s", 'dog', 'barks', '.'];
const HEADS = [3, 1, 4, 0, 4];
const RELS = ['poss', 'possessive', 'nsubj', 'root', 'punct'];
// One head's word-level map, [CLS] John 's dog barks . [SEP].
const MAP = [
  [0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01],
  [0.1, 0.3, 0.4, 0.1, 0.05, 0.03, 0.02],
  [0.1, 0.1, 0.2, 0.5, 0.05, 0.03, 0.02],
  [0.1, 0.05, 0.05, 0.3, 0.45, 0.03, 0.02],
  [0.5, 0.05, 0.05, 0.2, 0.1, 0.08, 0.02],
  [0.1, 0.05, 0.05, 0.1, 0.6, 0.08, 0.02],
  [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4],
].flat();

test('attention head predictions: diagonal zeroed, [CLS]/[SEP] dropped, both directions, never ROOT', () => {
  // Rows, diagonal and [CLS]/[SEP] ignored: John→'s, 's→dog, dog→barks, barks→dog (its 0.5 to [CLS] is dropped), .→barks.
  assert.deepEqual([...attentionHeadPredictions(MAP, 5, 'dep->head')], [2, 3, 4, 3, 4]);
  // Columns: who attends most to John ('s), to 's (John), to dog ('s), to barks (.), to . (barks).
  assert.deepEqual([...attentionHeadPredictions(MAP, 5, 'head<-dep')], [2, 1, 2, 5, 4]);
  // Offset of a second head in a [heads, G, G] tensor.
  const two = [...new Array(49).fill(0), ...MAP];
  assert.deepEqual([...attentionHeadPredictions(two, 5, 'dep->head', 49)], [2, 3, 4, 3, 4]);
  // An all-zero map predicts the first word for every word (numpy's argmax of zeros is 0; the
  // zeroed diagonal ties with the rest), never ROOT.
  assert.deepEqual([...attentionHeadPredictions(new Array(49).fill(0), 5, 'dep->head')], [1, 1, 1, 1, 1]);
});

test('head accuracy per relation with the poss rule, and the offset baseline, equal hand computation', () => {
  const preds = [
    attentionHeadPredictions(MAP, 5, 'dep->head'),
    attentionHeadPredictions(MAP, 5, 'head<-dep'),
    ...BASELINE_OFFSETS.map((k) => offsetPredictions(5, k)),
  ];
  assert.deepEqual([...offsetPredictions(5, -1)], [0, 1, 2, 3, 4]);
  assert.deepEqual([...offsetPredictions(5, 2)], [3, 4, 5, 5, 5]);
  assert.deepEqual([...offsetPredictions(5, -3)], [0, 0, 0, 1, 2]);
  const c = new RelationCounts(preds.length);
  c.add(WORDS, HEADS, RELS, (p) => preds[p]!);
  assert.deepEqual(c.relations().slice(0, 1), ['all']);
  assert.equal(c.total.get('all'), 5);
  // dep->head: John predicts 's (wrong) but poss takes 's's prediction (dog, right); 's wrong;
  // dog right; barks can never be ROOT; . right.
  assert.equal(c.accuracy('poss', 0), 1);
  assert.equal(c.accuracy('possessive', 0), 0);
  assert.equal(c.accuracy('nsubj', 0), 1);
  assert.equal(c.accuracy('root', 0), 0);
  assert.equal(c.accuracy('punct', 0), 1);
  assert.equal(c.accuracy('all', 0), 3 / 5);
  // head<-dep: 's right (John), . right; John's poss rule takes 's's prediction (John): wrong.
  assert.equal(c.accuracy('poss', 1), 0);
  assert.equal(c.accuracy('possessive', 1), 1);
  assert.equal(c.accuracy('all', 1), 2 / 5);
  // Offsets −3…+2 in order: all-accuracies 0, 0, 2/5 ('s and .), 0, 2/5 (John by the poss rule, dog), 0.
  assert.deepEqual(BASELINE_OFFSETS.map((_, k) => c.accuracy('all', 2 + k)), [0, 0, 2 / 5, 0, 2 / 5, 0]);
  // +2 predicts dog (3) for John — right without the rule — but the rule scores 's's prediction (5).
  assert.equal(c.accuracy('poss', 2 + BASELINE_OFFSETS.indexOf(2)), 0);
  assert.equal(c.accuracy('poss', 2 + BASELINE_OFFSETS.indexOf(1)), 1);
  // UD name of the relation gets the same rule.
  const ud = new RelationCounts(1);
  ud.add(WORDS, HEADS, ['nmod:poss', 'case', 'nsubj', 'root', 'punct'], () => preds[0]!);
  assert.equal(ud.accuracy('nmod:poss', 0), 1);
  assert.equal(DIRECTIONS.length, 2);
});

test('Jensen–Shannon divergence between heads equals hand computation; identical heads are at 0', () => {
  // n = 2: head a attends to itself, head b to the other piece, head c = head a.
  const a = [1, 0, 0, 1];
  const b = [0, 1, 1, 0];
  const d = new HeadDivergence(3);
  d.add([a, b, a], 2);
  const D = d.result();
  const hi = 0.999 + 0.0005;
  const lo = 0.0005;
  // Per row: p = (hi, lo), q = (lo, hi), m = (½, ½): JS = ½KL(p‖m) + ½KL(q‖m) = hi ln(2hi) + lo ln(2lo).
  const perRow = hi * Math.log(2 * hi) + lo * Math.log(2 * lo);
  close(D[0 * 3 + 1]!, perRow, 1e-12, 'a-b'); // two rows summed, divided by two rows
  close(D[1 * 3 + 0]!, perRow, 1e-12, 'b-a');
  close(D[0 * 3 + 2]!, 0, 1e-12, 'a-c');
  close(D[0]!, 0, 0, 'diagonal');
});

test('classical MDS recovers the distances of points in the plane', () => {
  const pts = [[0, 0], [3, 0], [0, 4], [1, 1], [-2, 2]];
  const K = pts.length;
  const dist = new Float64Array(K * K);
  const dd = (p: number[], q: number[]) => Math.hypot(p[0]! - q[0]!, p[1]! - q[1]!);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) dist[i * K + j] = dd(pts[i]!, pts[j]!);
  const out = classicalMds(dist, K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) close(dd(out[i]!, out[j]!), dist[i * K + j]!, 1e-9, `d(${i},${j})`);
  assert.deepEqual(classicalMds(dist, K), out, 'deterministic');
});

test('attention pairs: one per arc (dependent, head), seeded negatives never linked, 144-style feature layout', () => {
  const heads = [3, 3, 4, 0, 4, 4];
  const rels = ['det', 'amod', 'nsubj', 'root', 'advmod', 'punct'];
  const pairs = samplePairs(7, heads, rels, 1, mulberry32(1));
  const arcs = pairs.filter((p) => p.arc);
  assert.deepEqual(arcs.map((p) => [p.i, p.j, p.rel]), [[0, 2, 'det'], [1, 2, 'amod'], [2, 3, 'nsubj'], [4, 3, 'advmod'], [5, 3, 'punct']]);
  const neg = pairs.filter((p) => !p.arc);
  assert.equal(neg.length, 5);
  const linked = (i: number, j: number) => heads[i] === j + 1 || heads[j] === i + 1;
  for (const p of neg) {
    assert.ok(p.i !== p.j && !linked(p.i, p.j), `negative ${p.i},${p.j} is an arc`);
    assert.equal(p.sentence, 7);
  }
  assert.equal(new Set(neg.map((p) => `${p.i},${p.j}`)).size, 5, 'drawn without replacement');
  assert.deepEqual(samplePairs(7, heads, rels, 1, mulberry32(1)), pairs, 'seeded');
  assert.notDeepEqual(samplePairs(7, heads, rels, 1, mulberry32(2)), pairs);
  // 30 ordered pairs, 10 linked: at most 20 negatives.
  assert.equal(samplePairs(0, heads, rels, 10, mulberry32(1)).filter((p) => !p.arc).length, 20);

  // Two layers × two heads, n = 2 words: value = 1000·layer + 100·head + 10·row + col.
  const n = 2;
  const G = n + 2;
  const maps = [0, 1].map((l) => Float32Array.from({ length: 2 * G * G }, (_, x) => 1000 * l + 100 * Math.floor(x / (G * G)) + 10 * Math.floor((x % (G * G)) / G) + (x % G)));
  const pair = [{ sentence: 0, i: 0, j: 1, arc: true, rel: 'x' }];
  const F = pairFeatureCount(2, 2, true);
  assert.equal(F, 8);
  const out = new Float32Array(F);
  pairFeatures(maps, 2, n, pair, true, out);
  // i→j = word 0 → word 1 = position 1 → 2: 12; reversed: 21.
  assert.deepEqual([...out], [12, 112, 1012, 1112, 21, 121, 1021, 1121]);
});

test('one heads pass over planted attention: the planted head finds every arc, offsets and statistics computed, both levels', async () => {
  const { plantedSentences, plantedAttention } = await import('./heads-planted.js');
  const { FakeTokenizer } = await import('./extract-fakes.js');
  const { headsPass, bestForRelation } = await import('../src/probes/heads-compute.js');
  const sentences = plantedSentences(25, 3);
  const tok = new FakeTokenizer(3);
  const H = 3;
  const att = plantedAttention(sentences, tok, 2, H, { 2: [1] }, 9);
  const reader = (raw: boolean) => ({
    numHeads: H,
    attentionLayers: raw ? [] : [1, 2],
    rawAttentionLayers: raw ? [1, 2] : [],
    hasAttention: (s: number) => s !== 4, // one sentence "too long": skipped
    readAttention: async (l: number, s: number) => ({ data: att.word[s]![l - 1]!, shape: [H, sentences[s]!.words.length + 2, sentences[s]!.words.length + 2] }),
    ...(raw ? { readRawAttention: async (l: number, s: number) => ({ data: att.raw[s]![l - 1]!, shape: [H, att.tokens[s]!.length, att.tokens[s]!.length] }) } : {}),
  });
  for (const raw of [true, false]) {
    const pass = await headsPass(sentences, reader(raw), tok, { layers: [1, 2], fromPieces: 'mean', distanceSentences: 5, seed: 1 });
    assert.equal(pass.level, raw ? 'piece' : 'word');
    assert.equal(pass.skipped.noAttention, 1);
    assert.equal(pass.sentencesScored, 24);
    const kept = sentences.filter((_, i) => i !== 4);
    const words = kept.reduce((a, s) => a + s.words.length, 0);
    const roots = kept.length;
    const planted = pass.predictors.findIndex((p) => p.layer === 2 && p.head === 2 && p.direction === 'dep->head');
    assert.equal(pass.counts.total.get('all'), words);
    assert.equal(pass.counts.accuracy('all', planted), (words - roots) / words, 'every non-root word found');
    for (const r of ['nsubj', 'obj', 'det', 'amod', 'punct']) {
      assert.equal(pass.counts.accuracy(r, planted), 1, r);
      assert.equal(bestForRelation(pass, r).head, planted, `best head for ${r}`);
    }
    assert.equal(pass.counts.accuracy('root', planted), 0, 'a head never predicts ROOT');
    assert.equal(pass.predictors.filter((p) => p.offset !== null).length, 6);
    if (raw) {
      assert.equal(pass.surface!.length, 2);
      const s = pass.surface![1]!;
      // Planted head: most of each word row's mass goes to a word's first piece or [SEP] — never to itself in a one-piece word.
      assert.ok(s.attention.sep[1]! > 0 && s.attention.sep[1]! < 1);
      assert.ok(s.entropy[1]! < s.entropy[0]!, 'the planted head is sharper than the noise heads');
      const lnP = kept.map((x) => Math.log(tok.encodeWords(x.words).tokens.length));
      close(s.uniformEntropy, lnP.reduce((a, b) => a + b) / lnP.length, 1e-9, 'uniform');
    } else assert.equal(pass.surface, null);
    assert.equal(pass.distances!.sentences, 5);
    assert.equal(pass.distances!.points.length, 6);
    const D = pass.distances!.matrix;
    // The planted head (index 1·3 + 1 = 4) is farther from the noise heads than they are from each other.
    assert.ok(D[4 * 6 + 3]! > D[0 * 6 + 1]!, `${D[4 * 6 + 3]} > ${D[1]}`);
  }
  await assert.rejects(headsPass(sentences, reader(false), tok, { layers: [1, 2], fromPieces: 'first', distanceSentences: 0, seed: 1 }), /needs piece-level/);
  await assert.rejects(headsPass(sentences, reader(false), tok, { layers: [3], fromPieces: 'mean', distanceSentences: 0, seed: 1 }), /no attention for layer 3/);
});

test('classification report, majority baseline and argmax equal hand computation', async () => {
  const { classificationReport, majorityBaseline, argmaxRows } = await import('../src/probes/classification.js');
  // gold:  a a b b c, -1 (unseen) ; predicted: a b b b a, c
  const r = classificationReport([0, 0, 1, 1, 2, -1], [0, 1, 1, 1, 0, 2], ['a', 'b', 'c']);
  assert.equal(r.correct, 3);
  assert.equal(r.accuracy, 3 / 6);
  assert.equal(r.unseen, 1);
  assert.deepEqual(r.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 0]]);
  const [a, b, c] = r.perClass;
  assert.deepEqual([a!.precision, a!.recall, a!.support], [1 / 2, 1 / 2, 2]);
  assert.deepEqual([b!.precision, b!.recall], [2 / 3, 1]);
  close(b!.f1, (2 * (2 / 3) * 1) / (2 / 3 + 1), 1e-12);
  assert.deepEqual([c!.precision, c!.recall, c!.f1, c!.predicted], [0, 0, 0, 1]);
  close(r.macroF1, (0.5 + 0.8 + 0) / 3, 1e-12);
  assert.deepEqual(majorityBaseline([1, 1, 0], [1, 0, 1, 1], 2), { label: 1, accuracy: 3 / 4 });
  assert.deepEqual([...argmaxRows([0, 2, 1, 5, 5, 0], 3)], [1, 0]);
});

test('Attn-only parser feeds: maps, transposes, the ROOT features and padding', async () => {
  const { parserFeeds, parserMapCount, parserPredictions, parserUas } = await import('../src/probes/attn-parser.js');
  // One layer, one head; sentence A has 2 words (G = 4), B has 1 word (G = 3).
  const mA = Float32Array.from({ length: 16 }, (_, x) => x); // value = 4·row + col
  const mB = Float32Array.from({ length: 9 }, (_, x) => 100 + x);
  const batch = [
    { n: 2, maps: [mA], heads: [2, 0], scored: [true, true] },
    { n: 1, maps: [mB], heads: [0], scored: [false] },
  ];
  assert.equal(parserMapCount(1, 1, true), 2);
  const { feeds, count } = parserFeeds(batch, 1, true);
  assert.equal(count, 3);
  assert.deepEqual(feeds.words!.dims, [2, 2, 2, 2]);
  // A: words[i][j] = (A[i+1][j+1], A[j+1][i+1]): (0,1) → (6, 9)
  const w = feeds.words!.data as Float32Array;
  assert.deepEqual([...w.slice(0, 8)], [5, 5, 6, 9, 9, 6, 10, 10]);
  // ROOT features of A's word 0: cls = A[1][0] = 4, sep = A[1][3] = 7; transposed: A[0][1] = 1, A[3][1] = 13.
  assert.deepEqual([...(feeds.cls!.data as Float32Array).slice(0, 2)], [4, 1]);
  assert.deepEqual([...(feeds.sep!.data as Float32Array).slice(0, 2)], [7, 13]);
  // B is padded: its second word and its candidate 2 are masked; targets weigh 1/3 each.
  const mask = [...(feeds.mask!.data as Float32Array)];
  assert.deepEqual(mask.slice(0, 6), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(mask.slice(6), [0, 0, -1e9, -1e9, -1e9, -1e9]);
  const t = [...(feeds.target!.data as Float32Array)];
  assert.deepEqual(t.map((v) => Math.round(v * 3)), [0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0]);
  const preds = parserPredictions(Float32Array.from([0, 1, 5, 9, 0, 0, 3, 1, 0, 0, 0, 0]), batch);
  assert.deepEqual(preds.map((p) => [...p]), [[2, 0], [0]]);
  assert.deepEqual(parserUas(preds, batch), { correct: 2, total: 2 });
});
