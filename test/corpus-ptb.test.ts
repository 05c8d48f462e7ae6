import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadCorpus, loadSplits } from '../src/corpus/load.js';
import { findCycle } from '../src/corpus/tree-check.js';
import type { Tree } from '../src/corpus/types.js';
import { dataMirror, repoRoot } from './helpers.js';

const fx = (name: string) => join(repoRoot, 'test', 'fixtures', 'corpus', name);
const labels = (t: Tree): string[] => [t.label, ...t.children.flatMap(labels)];

test('PTB cleanup: traces and emptied constituents dropped and counted, function tags stripped, POS kept', async () => {
  const c = await loadCorpus(fx('sample.mrg'));
  assert.equal(c.format, 'ptb');
  assert.equal(c.sentences.length, 3);
  assert.deepEqual(c.skipped, { 'traces (-NONE-)': 1, 'constituents emptied by trace removal': 1 });
  const s3 = c.sentences[2]!;
  assert.deepEqual(s3.words, ['She', 'was', 'seen', 'after', 'it', 'rained', '.']);
  assert.deepEqual(s3.xpos, ['PRP', 'VBD', 'VBN', 'IN', 'PRP', 'VBD', '.']);
  const all = c.sentences.flatMap((s) => labels(s.tree!));
  assert.ok(all.includes('NP') && all.includes('SBAR') && all.includes('PP'));
  assert.ok(!all.some((l) => /-(SBJ|TMP|LOC|PRD|\d)/.test(l) || l === '-NONE-'), all.join(' '));
  assert.equal(s3.source.line, 15);
});

test('stanford head rules: content words head (aux, cop, det, possessive, mark attach to them)', async () => {
  const c = await loadCorpus(fx('sample.mrg'), { headRules: 'stanford' });
  const [a, b, d] = c.sentences;
  // The old man will read a book in Anna 's garden .
  assert.deepEqual(a!.heads, [3, 3, 5, 5, 0, 7, 5, 5, 11, 9, 8, 5]);
  assert.deepEqual(a!.deprels, ['det', 'amod', 'nsubj', 'aux', 'root', 'det', 'dobj', 'prep', 'poss', 'possessive', 'pobj', 'punct']);
  // Cats are happy .
  assert.deepEqual(b!.heads, [3, 3, 0, 3]);
  assert.deepEqual(b!.deprels, ['nsubj', 'cop', 'root', 'punct']);
  // She was seen after it rained .
  assert.deepEqual(d!.heads, [3, 3, 0, 6, 6, 3, 3]);
  assert.deepEqual(d!.deprels, ['nsubjpass', 'auxpass', 'root', 'mark', 'nsubj', 'advcl', 'punct']);
});

test('collins (Yamada & Matsumoto / ptbconv) head rules: function words head (modal, copula, complementizer, possessive)', async () => {
  const c = await loadCorpus(fx('sample.mrg'), { headRules: 'collins' });
  const [a, b, d] = c.sentences;
  assert.deepEqual(a!.heads, [3, 3, 4, 0, 4, 7, 5, 5, 10, 11, 8, 4]);
  assert.deepEqual(a!.deprels, ['NMOD', 'NMOD', 'SBJ', 'ROOT', 'VC', 'NMOD', 'OBJ', 'VMOD', 'NMOD', 'NMOD', 'PMOD', 'P']);
  assert.deepEqual(b!.heads, [2, 0, 2, 2]);
  assert.deepEqual(b!.deprels, ['SBJ', 'ROOT', 'PRD', 'P']);
  assert.deepEqual(d!.heads, [2, 0, 2, 3, 6, 4, 2]);
  assert.deepEqual(d!.deprels, ['SBJ', 'ROOT', 'VC', 'VMOD', 'SBJ', 'SBAR', 'P']);
});

test('a PTB WSJ folder splits by section: 02-21 train, 22 dev, 23 test', async () => {
  const { train, dev, test: t } = await loadSplits(fx('ptb-wsj'));
  assert.deepEqual(train.sentences.map((s) => s.words[1]), ['rose', 'left']);
  assert.deepEqual(dev.sentences.map((s) => s.words[1]), ['fell']);
  assert.deepEqual(t.sentences.map((s) => s.words[1]), ['slowed']);
  assert.equal(t.split, 'test');
});

test('mirror: all 3,914 PTB sample trees convert to single-rooted, acyclic trees with both schemes', async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  let total = 0;
  const headTags: Record<string, Record<string, number>> = { stanford: {}, collins: {} };
  for (const scheme of ['stanford', 'collins'] as const) {
    total = 0;
    for (const split of ['train', 'dev', 'test']) {
      const c = await loadCorpus(`ptb:${split}`, { headRules: scheme });
      for (const s of c.sentences) {
        total++;
        const h = s.heads!;
        assert.equal(h.length, s.words.length);
        assert.equal(h.filter((x) => x === 0).length, 1, `${s.id}: not single-rooted`);
        assert.ok(h.every((x) => x >= 0 && x <= h.length));
        assert.equal(findCycle(h), -1, `${s.id}: cycle`);
        h.forEach((x, i) => {
          if (x === 0) return;
          const pair = `${s.xpos![x - 1]}<-${s.xpos![i]}`;
          headTags[scheme]![pair] = (headTags[scheme]![pair] ?? 0) + 1;
        });
      }
    }
    assert.equal(total, 3914);
  }
  const count = (scheme: string, re: RegExp) => Object.entries(headTags[scheme]!).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
  // stanford: possessive 's never heads, modals head a verb only in rare constructions (an
  // elliptical modal, "So would the Tramp", heads its clause); infinitival to and determiners do not head verbs or
  // nouns (the few left are prepositional `to` before a gerund or `as to why …`, and pronominal
  // `that`/`those` heading a phrase, as in Stanford basic dependencies)
  assert.equal(count('stanford', /^POS</), 0);
  assert.ok(count('stanford', /^MD<-VB/) < 5); // "ought (S to VP)" and "so too will …" inversions
  assert.ok(count('stanford', /^TO<-VB$/) < 5);
  assert.ok(count('stanford', /^DT<-NN/) < 10);
  assert.ok(count('stanford', /^(NN|NNS|NNP)<-DT$/) > 5000, 'determiners attach to nouns');
  // collins: modals head the verb phrase, possessive 's heads the possessor
  assert.ok(count('collins', /^MD<-VB$/) > 500);
  assert.ok(count('collins', /^POS<-NNP?$/) > 500);
});

test('mirror: collins matches the published conversion of wsj_0001 (NLTK dependency_treebank, written by ptbconv)', async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  const c = await loadCorpus('ptb:train', { headRules: 'collins' });
  // Heads of the two wsj_0001 sentences in NLTK's dependency_treebank wsj_0001.dp (copy: dellison/DependencyTrees.jl
  // test/data/wsj_0001.ids.dp at 0129d0e553f87539791a302a0f3aa613ff2e8c01), Yamada & Matsumoto's ptbconv output
  assert.deepEqual(c.sentences[0]!.heads, [2, 8, 2, 5, 6, 2, 2, 0, 8, 11, 9, 9, 15, 15, 12, 9, 16, 8]);
  assert.deepEqual(c.sentences[1]!.heads, [2, 3, 0, 3, 4, 7, 12, 12, 12, 12, 12, 5, 3]);
});

test('mirror: stanford heads and labels of wsj_0001, checked by hand against Stanford basic dependencies', async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  const c = await loadCorpus('ptb:train', { headRules: 'stanford' });
  const [a, b] = c.sentences;
  // Pierre Vinken , 61 years old , will join the board as a nonexecutive director Nov. 29 .
  // join is the root (will: aux); Vinken its nsubj with the appositive-like ADJP "61 years old" as
  // amod (years: npadvmod of old); board dobj; as prep → director pobj; Nov. tmod → 29 num.
  assert.deepEqual(a!.words.slice(0, 3), ['Pierre', 'Vinken', ',']);
  assert.deepEqual(a!.heads, [2, 9, 2, 5, 6, 2, 2, 9, 0, 11, 9, 9, 15, 15, 12, 9, 16, 9]);
  assert.deepEqual(a!.deprels, ['nn', 'nsubj', 'punct', 'num', 'npadvmod', 'amod', 'punct', 'aux', 'root', 'det', 'dobj', 'prep', 'det', 'amod', 'pobj', 'tmod', 'num', 'punct']);
  // Mr. Vinken is chairman of Elsevier N.V. , the Dutch publishing group .
  // copula: chairman is the root (is: cop); N.V. pobj of "of", group its appos.
  assert.deepEqual(b!.words.slice(0, 4), ['Mr.', 'Vinken', 'is', 'chairman']);
  assert.deepEqual(b!.heads, [2, 4, 4, 0, 4, 7, 5, 7, 12, 12, 12, 7, 4]);
  assert.deepEqual(b!.deprels, ['nn', 'nsubj', 'cop', 'root', 'prep', 'nn', 'pobj', 'punct', 'det', 'nn', 'amod', 'appos', 'punct']);
});

test('mirror: stanford coordination in UCP heads on the first conjunct (wsj_0002: "55 years old and former chairman")', {
  todo: 'headrules.ts lacks the Collins/CoreNLP coordination fix (AbstractCollinsHeadFinder.postOperationFix: a head child right after CC/CONJP moves two to the left), so UCP picks "chairman"; left to the corpus owner (issue 16 report)',
}, async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  const c = await loadCorpus('ptb:train', { headRules: 'stanford' });
  const s = c.sentences.find((x) => x.id.endsWith('wsj_0002.mrg#1'))!;
  // Rudolph Agnew , 55 years old and former chairman of Consolidated Gold Fields PLC , was named
  // a nonexecutive director of this British industrial conglomerate .
  // UCP (ADJP "55 years old") (CC and) (NP "former chairman of …"): old heads, and → old (cc),
  // chairman → old (conj); named is the root (was: auxpass), director its xcomp.
  assert.deepEqual(s.heads, [2, 17, 2, 5, 6, 2, 6, 9, 6, 9, 14, 14, 14, 10, 2, 17, 0, 20, 20, 17, 20, 25, 25, 25, 21, 17]);
});
