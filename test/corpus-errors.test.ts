import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCorpus } from '../src/corpus/load.js';
import { InputError } from '../src/util/errors.js';
import { repoRoot, runCli, tempDir } from './helpers.js';

const fx = (name: string) => join(repoRoot, 'test', 'fixtures', 'corpus', name);

/** Every bad input is an InputError (exit 2) naming file:line, expected, found and a fix. */
async function expectInputError(p: Promise<unknown>, where: RegExp, summary: RegExp, found?: RegExp): Promise<InputError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof InputError, `not an InputError: ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, where);
    assert.match(err.summary, summary);
    assert.ok(err.details.expected, 'no expected');
    assert.ok(err.details.found, 'no found');
    assert.ok(err.details.fix, 'no fix');
    if (found) assert.match(err.details.found, found);
    return err;
  }
  assert.fail('no error thrown');
}

test('wrong column count names file:line and the counts', async () => {
  const e = await expectInputError(loadCorpus(fx('bad-columns.conllu')), /bad-columns\.conllu:2: /, /wrong column count/, /1 column/);
  assert.match(e.details.expected!, /10 tab-separated columns/);
});

test('CSV row with the wrong column count, and an unknown --text-column', async () => {
  await expectInputError(loadCorpus(fx('bad-row.csv')), /bad-row\.csv:3: /, /malformed CSV/, /^3 fields where the header has 2$/);
  await expectInputError(loadCorpus(fx('sample.csv'), { textColumn: 'body' }), /sample\.csv:1: /, /no text column "body"/, /"text", "label"/);
});

test('non-numeric and out-of-range HEAD', async () => {
  await expectInputError(loadCorpus(fx('bad-head.conllu')), /bad-head\.conllu:1:7: /, /non-numeric HEAD/, /"x"/);
  const e = await expectInputError(loadCorpus(fx('bad-head-range.conllu')), /bad-head-range\.conllu:2:7: /, /HEAD out of range/, /^7$/);
  assert.match(e.details.expected!, /0…2/);
});

test('dependency cycle', async () => {
  await expectInputError(loadCorpus(fx('bad-cycle.conllu')), /bad-cycle\.conllu:1: /, /cycle/, /1:A → 2:B → 3:C → 1/);
});

test('unbalanced brackets: a missing ")" and an extra ")" with line and column', async () => {
  await expectInputError(loadCorpus(fx('bad-brackets.mrg')), /bad-brackets\.mrg:1:1: /, /unbalanced brackets/, /end of file/);
  await expectInputError(loadCorpus(fx('bad-brackets-extra.mrg')), /bad-brackets-extra\.mrg:1:43: /, /unbalanced brackets/, /extra "\)"/);
});

test('strict IOB2 rejects I- after O; lenient repairs it with a warning', async () => {
  await expectInputError(loadCorpus(fx('bad-iob.iob2')), /bad-iob\.iob2:3: /, /does not continue an entity/, /I-PER after O/);
  const c = await loadCorpus(fx('bad-iob.iob2'), { lenient: true });
  assert.deepEqual(c.sentences[0]!.entities, [{ start: 0, end: 1, label: 'PER' }, { start: 2, end: 3, label: 'PER' }]);
  assert.equal(c.warnings.length, 1);
  assert.match(c.warnings[0]!, /repaired 1 I- tag/);
});

test('invalid UTF-8 reports the byte offset and line', async () => {
  const dir = tempDir();
  const p = join(dir, 'latin1.txt');
  writeFileSync(p, Buffer.concat([Buffer.from('fine line\ncaf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]));
  const e = await expectInputError(loadCorpus(p), /latin1\.txt:2 \(byte 13\): /, /invalid UTF-8/, /0xe9/);
  assert.equal(e.details.offset, 13);
});

test('empty file', async () => {
  await expectInputError(loadCorpus(fx('empty.conllu')), /empty\.conllu: /, /empty file/, /0 bytes/);
});

test('unknown dataset names list the registry', async () => {
  await assert.rejects(loadCorpus('no-such-set'), (e: unknown) => e instanceof InputError && /ewt/.test(e.details.expected ?? ''));
});

test('the CLI prints bad input without a stack trace and exits 2', () => {
  const r = runCli(['data', 'info', fx('bad-head-range.conllu')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /bad-head-range\.conllu:2:7: HEAD out of range/);
  assert.match(r.stderr, /expected: .*\n.*found: +7\n.*fix:/);
  assert.doesNotMatch(r.stderr, /at \w+ \(/);
});
