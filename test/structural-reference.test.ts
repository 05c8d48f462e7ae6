/**
 * The structural metrics against values they did not compute (issue 16): the fixture
 * test/fixtures/structural/metrics.json holds random trees with punctuation, noisy predictions and
 * the linear baseline's chain, scored by an independent Python reference of reporter.py
 * (test/fixtures/structural/reference.py, committed output; the test never runs it). The fixture
 * also holds what plausible wrong formulas give (punctuation in gold trees, whole-matrix or
 * unaveraged Spearman, no length averaging, punctuation roots), and the test checks they differ
 * from the right values, so each of those bugs fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { depthSpearman, distanceSpearman } from '../src/probes/metrics.js';
import { goldSentence, predictionRecords, scoreRecords, scoreSplit } from '../src/probes/structural-eval.js';
import { repoRoot } from './helpers.js';

interface FixtureSentence {
  id: string;
  words: string[];
  heads: number[];
  xpos?: string[];
  upos?: string[];
  predicted_distances: number[][];
  predicted_depths: number[];
}
interface LengthAveraged {
  value: number | null;
  perLength: Record<string, number>;
  undefinedCount: number;
}
interface Expected {
  uuas: number;
  dspr: LengthAveraged;
  root_acc: number;
  nspr: LengthAveraged;
  sentences: { punct: boolean[]; gold_edges: [number, number][]; predicted_edges: [number, number][]; gold_root: number; predicted_root: number }[];
}
interface Fixture {
  sentences: FixtureSentence[];
  expected: Expected;
  wrong: Record<string, number>;
  linear_expected: Expected;
  linear_wrong: Record<string, number>;
}

const fixture = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', 'structural', 'metrics.json'), 'utf8')) as Fixture;
const TOL = 1e-12;

const chain = (n: number) => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.abs(i - j)));
const splits: [string, FixtureSentence[], Expected, Record<string, number>][] = [
  ['noisy predictions', fixture.sentences, fixture.expected, fixture.wrong],
  [
    'linear baseline',
    fixture.sentences.map((s) => ({ ...s, predicted_distances: chain(s.words.length), predicted_depths: s.words.map((_, i) => i) })),
    fixture.linear_expected,
    fixture.linear_wrong,
  ],
];

const sortedEdges = (edges: readonly (readonly number[])[]) => edges.map(([a, b]) => [Math.min(a!, b!), Math.max(a!, b!)].join('-')).sort();
const gold = (s: FixtureSentence) => goldSentence({ id: s.id, source: { file: 'fixture', line: 0 }, words: s.words, heads: s.heads, ...(s.xpos ? { xpos: s.xpos } : {}), ...(s.upos ? { upos: s.upos } : {}) });
const close = (actual: number | null, expected: number | null, what: string) => {
  assert.ok(actual !== null && expected !== null && Math.abs(actual - expected) < TOL, `${what}: ${actual} (reference ${expected})`);
};

for (const [name, sentences, expected, wrong] of splits) {
  test(`structural metrics equal the Python reference (${name})`, () => {
    const g = sentences.map(gold);
    const { scores, predictions } = scoreSplit(g, sentences.map((s) => s.predicted_distances.flat()), sentences.map((s) => s.predicted_depths));
    g.forEach((gs, k) => {
      const ref = expected.sentences[k]!;
      assert.deepEqual(gs.punct, ref.punct, `${gs.id} punctuation`);
      assert.deepEqual(sortedEdges(gs.goldEdges), sortedEdges(ref.gold_edges), `${gs.id} gold edges (punctuation excluded)`);
      assert.deepEqual(sortedEdges(predictions[k]!.edges!), sortedEdges(ref.predicted_edges), `${gs.id} predicted MST`);
      assert.equal(gs.root, ref.gold_root, `${gs.id} gold root`);
      assert.equal(predictions[k]!.root, ref.predicted_root, `${gs.id} predicted root`);
    });
    close(scores.uuas, expected.uuas, 'UUAS');
    close(scores.dspr, expected.dspr.value, 'DSpr');
    close(scores.rootAcc, expected.root_acc, 'root accuracy');
    close(scores.nspr, expected.nspr.value, 'NSpr');
    // Per-length means and the undefined (constant prediction) count, as the reference has them.
    const d = distanceSpearman(sentences.map((s, k) => ({ n: s.words.length, predicted: s.predicted_distances.flat(), gold: g[k]!.distances })));
    const z = depthSpearman(sentences.map((s, k) => ({ predicted: s.predicted_depths, gold: g[k]!.depths })));
    for (const [mine, ref, what] of [[d, expected.dspr, 'DSpr'], [z, expected.nspr, 'NSpr']] as const) {
      assert.deepEqual(Object.keys(mine.perLength).map(Number), Object.keys(ref.perLength).map(Number), `${what} lengths`);
      for (const [len, v] of Object.entries(ref.perLength)) close(mine.perLength[Number(len)]!, v, `${what} length ${len}`);
      assert.equal(mine.undefinedCount, ref.undefinedCount, `${what} undefined correlations`);
    }
    // What predictions.jsonl holds recomputes to the same values.
    const again = scoreRecords(predictionRecords('m', 'layer.1', g, predictions, true));
    close(again.uuas, expected.uuas, 'UUAS from records');
    close(again.dspr, expected.dspr.value, 'DSpr from records');
    close(again.rootAcc, expected.root_acc, 'root accuracy from records');
    close(again.nspr, expected.nspr.value, 'NSpr from records');
  });

  test(`the fixture tells the right formulas from plausible wrong ones (${name})`, () => {
    const right: Record<string, number | null> = { uuas: expected.uuas, dspr: expected.dspr.value, nspr: expected.nspr.value, root: expected.root_acc };
    for (const [formula, v] of Object.entries(wrong)) {
      const metric = formula.startsWith('root') ? 'root' : formula.split('_')[0]!;
      assert.ok(Math.abs(v - right[metric]!) > 1e-3, `${formula} (${v}) is too close to the right ${metric} (${right[metric]}) to catch it`);
    }
    // The cases the wrong formulas need are in the fixture.
    assert.ok(expected.nspr.undefinedCount > 0 || name === 'linear baseline', 'a constant prediction');
    assert.ok(sentences.some((s) => s.words.length < 5) && sentences.some((s) => s.words.length > 50), 'lengths outside 5–50');
    assert.ok(sentences.some((s) => s.upos?.includes('PUNCT') && !s.xpos?.some((x) => [',', '.'].includes(x))), 'UPOS PUNCT outside the PTB list');
  });
}
