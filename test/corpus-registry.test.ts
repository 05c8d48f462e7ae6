import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus, loadSplits } from '../src/corpus/load.js';
import { getDataset, loadRegistry } from '../src/corpus/registry.js';
import { datasetInfo, type DatasetInfo } from '../src/corpus/info.js';
import { corpusToConllu } from '../src/corpus/conllu-write.js';
import { InputError } from '../src/util/errors.js';
import { dataMirror, repoRoot, runCli, tempDir } from './helpers.js';

const fx = (name: string) => join(repoRoot, 'test', 'fixtures', 'corpus', name);

test('registry: every file pinned (commit URL), with the sha256 and size of the mirror copy', () => {
  const sums = new Map(
    readFileSync(join(dataMirror, 'SHA256SUMS'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => /^(\S+)\s+(?:\.\/)?(.+)$/.exec(l)!)
      .map((m) => [m[2]!, m[1]!] as [string, string]),
  );
  const reg = loadRegistry();
  assert.deepEqual([...reg.keys()].sort(), ['agnews', 'ewt', 'polarity', 'ptb', 'semcor', 'uner-ewt', 'up-ewt', 'wnut17']);
  for (const ds of reg.values()) {
    assert.ok(ds.licence && ds.homepage && ds.description, ds.name);
    for (const f of ds.files) {
      const rel = `${ds.mirror}/${f.name}`;
      assert.equal(f.sha256, sums.get(rel), rel);
      assert.equal(f.size, statSync(join(dataMirror, rel)).size, rel);
      if (f.url !== null) assert.match(f.url, /^https:\/\/raw\.githubusercontent\.com\/[^/]+\/[^/]+\/[0-9a-f]{40}\//, rel);
    }
    for (const s of Object.values(ds.splits)) for (const name of s.files) assert.ok(ds.files.some((f) => f.name === name), `${ds.name}: ${name}`);
  }
});

// Sentence counts as SOURCES.md publishes them.
const PUBLISHED: [string, Record<string, number>][] = [
  ['ptb', { total: 3914 }],
  ['ewt', { train: 12544, dev: 2001, test: 2077 }],
  ['uner-ewt', { dev: 2001, test: 2077 }],
  ['up-ewt', { dev: 2002, test: 2077 }],
  ['wnut17', { train: 3394, dev: 1009, test: 1287 }],
  ['semcor', { all: 37176 }],
];

function checkCounts(name: string, info: DatasetInfo, counts: Record<string, number>): void {
  assert.ok(info.licence, name);
  for (const [split, n] of Object.entries(counts)) {
    const got = split === 'total' ? info.total.sentences : info.splits[split]!.sentences;
    assert.equal(got, n, `${name} ${split}`);
    if (split !== 'total') assert.equal(info.splits[split]!.matches, true);
  }
  for (const s of Object.values(info.splits)) {
    assert.ok(s.words > s.sentences, name);
    assert.equal(s.singleRooted, s.withHeads, name);
  }
}

test('data info (the code behind it) reports the published counts for every dataset through the mirror', async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  process.env.BERT_PROBE_CACHE = tempDir('bp-cache-');
  for (const [name, counts] of PUBLISHED) {
    const ds = getDataset(name);
    checkCounts(name, await datasetInfo(ds, {}, name === 'semcor' ? ['all'] : undefined), counts);
  }
});

test('bert-probe data info ewt --json prints the same through the CLI', () => {
  const r = runCli(['data', 'info', 'ewt', '--json']);
  assert.equal(r.status, 0, r.stderr);
  checkCounts('ewt', JSON.parse(r.stdout) as DatasetInfo, PUBLISHED[1]![1]);
});

test('data info ptb (human) prints the fixed file-number split and the licence', () => {
  const r = runCli(['data', 'info', 'ptb']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /train wsj_0001-0159, dev wsj_0160-0179, test wsj_0180-0199/);
  assert.match(r.stdout, /licence: +LDC 10% sample/);
  assert.match(r.stdout, /total +3,914 .*3,914 ok/);
});

test('data list --json names every dataset; data fetch verifies the mirror copies', () => {
  const l = runCli(['data', 'list', '--json']);
  assert.equal(l.status, 0, l.stderr);
  assert.equal((JSON.parse(l.stdout) as unknown[]).length, 8);
  const f = runCli(['data', 'fetch', 'wnut17', '--json']);
  assert.equal(f.status, 0, f.stderr);
  const files = (JSON.parse(f.stdout) as { files: { origin: string }[] }).files;
  assert.equal(files.length, 3);
  assert.ok(files.every((x) => x.origin === 'mirror'));
});

test('--offline without mirror or cache: exit 2 naming the missing file', () => {
  const r = runCli(['data', 'info', 'ewt:dev', '--offline'], { env: { BERT_PROBE_DATA_MIRROR: '' } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /offline: ewt file en_ewt-ud-dev\.conllu is not cached/);
  assert.match(r.stderr, /bert-probe data fetch ewt/);
});

test('data convert: PTB trees to CoNLL-U that reads back with the same heads', async () => {
  const out = join(tempDir(), 'sample.conllu');
  const r = runCli(['data', 'convert', fx('sample.mrg'), '--to', 'conllu', '--head-rules', 'collins', '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const back = await loadCorpus(out);
  const orig = await loadCorpus(fx('sample.mrg'), { headRules: 'collins' });
  assert.deepEqual(back.sentences.map((s) => [s.words, s.heads, s.deprels, s.xpos]), orig.sentences.map((s) => [s.words, s.heads, s.deprels, s.xpos]));
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  const text = corpusToConllu(await loadCorpus('ptb:test'));
  assert.equal(text.match(/^# sent_id = /gm)?.length, 245);
});

test('loadSplits: a missing train split names --train-split; dev can train when asked', async () => {
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  await assert.rejects(loadSplits('uner-ewt'), (e: unknown) => e instanceof InputError && /no split "train"/.test(e.message) && /--train-split/.test(e.details.fix ?? '') && /not in the test mirror/.test(e.details.found ?? ''));
  const s = await loadSplits('uner-ewt', { trainSplit: 'dev', evalSplit: 'test' });
  assert.equal(s.train.sentences.length, 2001);
  assert.equal(s.test.sentences.length, 2077);
  assert.equal(s.test.id, 'uner-ewt:test');
});

test('loadSplits on one file: 80/10/10 by sentence order, or an --eval-split file', async () => {
  const dir = tempDir();
  const p = join(dir, 'twenty.txt');
  writeFileSync(p, Array.from({ length: 20 }, (_, i) => `sentence number ${i}`).join('\n') + '\n');
  const s = await loadSplits(p);
  assert.deepEqual([s.train.sentences.length, s.dev.sentences.length, s.test.sentences.length], [16, 2, 2]);
  assert.equal(s.dev.sentences[0]!.words[2], '16');
  assert.equal(s.test.sentences[1]!.words[2], '19');
  const e = await loadSplits(p, { evalSplit: fx('sample.txt') });
  assert.equal(e.test.sentences.length, 2);
  assert.deepEqual([e.train.sentences.length, e.dev.sentences.length], [18, 2]);
});
