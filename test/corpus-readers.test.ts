import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus } from '../src/corpus/load.js';
import { repoRoot, tempDir } from './helpers.js';

const fx = (name: string) => join(repoRoot, 'test', 'fixtures', 'corpus', name);

test('CoNLL-U: words skip multiword ranges and empty nodes (counted), comments kept', async () => {
  const c = await loadCorpus(fx('sample.conllu'));
  assert.equal(c.format, 'conllu');
  assert.equal(c.sentences.length, 2);
  const [s1, s2] = c.sentences;
  assert.deepEqual(s1!.words, ['The', 'cat', 'does', "n't", 'sleep', '.']);
  assert.equal(s1!.id, 'demo-1');
  assert.equal(s1!.text, "The cat doesn't sleep.");
  assert.deepEqual(s1!.heads, [2, 5, 5, 5, 0, 5]);
  assert.deepEqual(s1!.deprels, ['det', 'nsubj', 'aux', 'advmod', 'root', 'punct']);
  assert.deepEqual(s1!.upos, ['DET', 'NOUN', 'AUX', 'PART', 'VERB', 'PUNCT']);
  assert.deepEqual(s1!.xpos, ['DT', 'NN', 'VBZ', 'RB', 'VB', '.']);
  assert.equal(s1!.source.line, 1);
  assert.deepEqual(s2!.words, ['Dogs', 'bark']);
  assert.equal(s2!.source.line, 12);
  assert.deepEqual(c.skipped, { 'multiword tokens': 1, 'empty nodes': 1 });
  assert.match(c.sha256, /^[0-9a-f]{64}$/);
});

test('CoNLL-X (.conllx) reads CPOSTAG/POSTAG, heads and labels', async () => {
  const c = await loadCorpus(fx('sample.conllx'));
  assert.equal(c.format, 'conllx');
  assert.deepEqual(c.sentences[0]!.heads, [2, 0, 2]);
  assert.deepEqual(c.sentences[0]!.deprels, ['SBJ', 'ROOT', 'VMOD']);
  assert.deepEqual(c.sentences[0]!.xpos, ['NNS', 'VBP', 'RB']);
});

test('CoNLL-U Plus PropBank: one argument column per predicate, in order, to frames', async () => {
  const c = await loadCorpus(fx('sample-up.conllu'));
  assert.equal(c.format, 'conllup');
  const s = c.sentences[0]!;
  assert.deepEqual(s.srl, [
    { predicate: 1, sense: 'want.01', args: [{ start: 0, end: 1, label: 'ARG0' }, { start: 3, end: 4, label: 'ARG1' }] },
    { predicate: 3, sense: 'buy.01', args: [{ start: 0, end: 1, label: 'ARG0' }, { start: 4, end: 5, label: 'ARG1' }] },
  ]);
  // a sentence without predicates: Universal PropBank's single empty argument column
  assert.deepEqual(c.sentences[1]!.srl, []);
});

test('IOB2 token TAB tag → typed spans; whitespace-only line separates sentences', async () => {
  const c = await loadCorpus(fx('sample.iob2'));
  assert.equal(c.sentences.length, 2);
  assert.deepEqual(c.sentences[0]!.entities, [{ start: 0, end: 2, label: 'PER' }, { start: 3, end: 4, label: 'LOC' }]);
  assert.deepEqual(c.sentences[1]!.entities, [{ start: 1, end: 3, label: 'ORG' }]);
});

test("UNER's indexed .iob2 layout with comments", async () => {
  const c = await loadCorpus(fx('sample-uner.iob2'));
  const s = c.sentences[0]!;
  assert.equal(s.id, 'u-1');
  assert.equal(s.text, 'Ada met Bob');
  assert.deepEqual(s.words, ['Ada', 'met', 'Bob']);
  assert.deepEqual(s.entities, [{ start: 0, end: 1, label: 'PER' }, { start: 2, end: 3, label: 'PER' }]);
});

test('BIOES and IOB1 decode to the same kind of spans', async () => {
  const b = await loadCorpus(fx('sample.bioes'));
  assert.equal(b.format, 'bioes');
  assert.deepEqual(b.sentences[0]!.entities, [{ start: 0, end: 2, label: 'LOC' }, { start: 3, end: 4, label: 'LOC' }]);
  const i1 = await loadCorpus(fx('sample.iob1'));
  assert.deepEqual(i1.sentences[0]!.entities, [{ start: 0, end: 1, label: 'PER' }, { start: 2, end: 3, label: 'PER' }, { start: 3, end: 4, label: 'PER' }]);
});

test('SemCor tag files: words with senses, punctuation, multiword expressions', async () => {
  const c = await loadCorpus(fx('br-z99'));
  assert.equal(c.format, 'semcor');
  assert.equal(c.sentences.length, 2);
  const s = c.sentences[0]!;
  assert.equal(s.id, 'br-z99#1');
  assert.deepEqual(s.words, ['The', 'river bank', 'flooded', '.']);
  assert.deepEqual(s.senses, [null, { lemma: 'river_bank', pos: 'NN', wnsn: '1', lexsn: '1:17:01::' }, { lemma: 'flood', pos: 'VB', wnsn: '2', lexsn: '2:30:00::' }, null]);
  assert.equal(c.sentences[1]!.senses![0]!.wnsn, '1;2');
});

test('plain text, CSV and TSV', async () => {
  const t = await loadCorpus(fx('sample.txt'));
  assert.deepEqual(t.sentences.map((s) => s.words.length), [4, 3]);
  assert.deepEqual(t.skipped, { 'blank lines': 1 });
  const c = await loadCorpus(fx('sample.csv'));
  assert.deepEqual(c.sentences.map((s) => [s.words, s.label]), [[['a', 'fine,', 'sunny', 'day'], 'pos'], [['rain', 'again'], 'neg']]);
  const v = await loadCorpus(fx('sample.tsv'), { labelColumn: 'topic' });
  assert.deepEqual(v.sentences.map((s) => s.label), ['business', 'sports']);
  assert.deepEqual(v.sentences[0]!.words, ['stocks', 'fell']);
});

test('--format overrides the extension', async () => {
  const c = await loadCorpus(fx('sample.txt'), { format: 'text' });
  assert.equal(c.format, 'text');
  await assert.rejects(loadCorpus(fx('sample.txt'), { format: 'conllu' }), /wrong column count/);
});

/** The sentences of a corpus without where they came from (file paths differ between copies). */
const content = (c: Awaited<ReturnType<typeof loadCorpus>>, file: string) =>
  c.sentences.map(({ source, id, ...rest }) => ({ ...rest, id: id.replace(file, 'FILE'), line: source.line }));

test('every reader gives the same sentences when the file has no final newline (the last sentence is not lost)', async () => {
  const dir = tempDir();
  const samples = readdirSync(join(repoRoot, 'test', 'fixtures', 'corpus')).filter((f) => f.startsWith('sample') || f === 'br-z99');
  assert.ok(samples.length >= 10, samples.join());
  for (const name of samples) {
    const text = readFileSync(fx(name), 'utf8');
    assert.ok(text.endsWith('\n'), `${name} has a final newline to remove`);
    const cut = join(dir, name);
    writeFileSync(cut, text.replace(/\s+$/, ''));
    const opts = name === 'sample.tsv' ? { labelColumn: 'topic' } : {};
    const a = await loadCorpus(fx(name), opts);
    const b = await loadCorpus(cut, opts);
    assert.ok(a.sentences.length > 0, name);
    assert.deepEqual(content(b, cut), content(a, fx(name)), `${name} without its final newline`);
    assert.deepEqual(b.skipped, a.skipped, `${name} skipped items`);
  }
});
