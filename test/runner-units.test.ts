/**
 * The runner's pure pieces (src/probes/runner.ts) against hand-computed values: sentence
 * selection (kept in order, dropped counted, --limit after selection, a corpus with none refused),
 * the split id hash, seed aggregation (mean, sample sd with n − 1, non-finite values left out) and
 * the result columns under --seeds K.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { Corpus, Sentence } from '../src/corpus/types.js';
import { aggregateSeeds, idsHash, meanSd, resultColumns, selectSentences } from '../src/probes/runner.js';
import { InputError } from '../src/util/errors.js';
import { Ui } from '../src/util/ui.js';

const sentence = (id: string, heads?: number[], line = 1): Sentence => ({ id, source: { file: 'c.conllu', line }, words: (heads ?? [0]).map((_, i) => `w${i}`), ...(heads ? { heads } : {}) });
const corpus = (sentences: Sentence[]): Corpus => ({ id: 'c', format: 'conllu', sha256: 'x', files: ['c.conllu'], sentences, skipped: {}, warnings: [] });

test('selectSentences: keeps usable sentences in order, counts the others, applies --limit after selection', () => {
  const c = corpus([sentence('a', [0, 1]), sentence('b'), sentence('c', [2, 1], 7), sentence('d', [2, 0]), sentence('e', [0, 1, 1])]);
  const warnings: string[] = [];
  const ui = new Ui({ quiet: true });
  ui.warn = (m: string) => void warnings.push(m);
  const r = selectSentences({ requires: ['trees'] }, c, ui);
  assert.deepEqual(r.kept.map((s) => s.id), ['a', 'd', 'e']);
  assert.equal(r.dropped, 2);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /c: skipped 2 sentence\(s\) without a dependency tree \(first: c\.conllu:1: no dependency heads\)/);
  assert.deepEqual(selectSentences({ requires: ['trees'] }, c, ui, 2).kept.map((s) => s.id), ['a', 'd']);
  // A family's own accept() drops too.
  const short = selectSentences({ requires: ['trees'], accept: (s) => (s.words.length > 2 ? null : 'too short') }, c, ui);
  assert.deepEqual([short.kept.map((s) => s.id), short.dropped], [['e'], 4]);
  assert.throws(
    () => selectSentences({ requires: ['trees'] }, corpus([sentence('x'), sentence('y', [1])]), ui),
    (e: unknown) => e instanceof InputError && /c has no sentence with a dependency tree/.test(e.message) && /treebank/.test(e.message),
  );
});

test('idsHash: sha256 of the ids joined by newlines, order-sensitive', () => {
  const s = [sentence('a'), sentence('b'), sentence('c')];
  assert.equal(idsHash(s), createHash('sha256').update('a\nb\nc').digest('hex'));
  assert.notEqual(idsHash([s[1]!, s[0]!, s[2]!]), idsHash(s));
  assert.equal(idsHash([]), createHash('sha256').update('').digest('hex'));
});

test('meanSd and aggregateSeeds: mean, sample sd (n − 1), NaN and missing values left out, other columns from the first seed', () => {
  assert.deepEqual(meanSd([2]), { mean: 2, sd: null });
  const { mean, sd } = meanSd([1, 2, 6]);
  assert.equal(mean, 3);
  assert.ok(Math.abs(sd! - Math.sqrt(7)) < 1e-12, `${sd}`); // ((4 + 1 + 9) / 2) = 7
  const rows = aggregateSeeds(
    [
      [{ layer: 'layer.1', uuas: 0.5, nspr: null, epochs: 3 }, { layer: 'layer.2', uuas: 0.7, nspr: NaN, epochs: 4 }],
      [{ layer: 'layer.1', uuas: 0.7, nspr: null, epochs: 5 }, { layer: 'layer.2', uuas: 0.9, nspr: 0.4, epochs: 6 }],
      [{ layer: 'layer.1', uuas: 0.9, nspr: null, epochs: 7 }, { layer: 'layer.2', uuas: 0.8, nspr: 0.6, epochs: 8 }],
    ],
    ['uuas', 'nspr'],
  );
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.layer, 'layer.1');
  assert.equal(rows[0]!.epochs, 3, 'non-metric columns from the first seed');
  assert.equal(rows[0]!.seeds, 3);
  assert.ok(Math.abs((rows[0]!.uuas as number) - 0.7) < 1e-12);
  assert.ok(Math.abs((rows[0]!.uuas_sd as number) - 0.2) < 1e-12);
  assert.equal(rows[0]!.nspr, null);
  assert.equal(rows[0]!.nspr_sd, null);
  assert.ok(Math.abs((rows[1]!.nspr as number) - 0.5) < 1e-12, 'NaN left out');
  assert.ok(Math.abs((rows[1]!.nspr_sd as number) - Math.sqrt(0.02)) < 1e-12);
  assert.deepEqual(aggregateSeeds([], ['uuas']), []);
});

test('resultColumns: each metric followed by its _sd and a seeds column under --seeds K; unchanged for one seed', () => {
  const cols = ['model', 'layer', 'uuas', 'epochs', 'nspr'];
  assert.deepEqual(resultColumns(cols, ['uuas', 'nspr'], 1), cols);
  assert.deepEqual(resultColumns(cols, ['uuas', 'nspr'], 3), ['model', 'layer', 'uuas', 'uuas_sd', 'epochs', 'nspr', 'nspr_sd', 'seeds']);
});
