import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCell, readCsv, toCsv } from '../src/results/csv.js';
import { InputError } from '../src/util/errors.js';
import { tempDir } from './helpers.js';

test('results.csv columns are exactly the declared ones, in the declared order (pinned)', () => {
  const columns = ['model', 'layer', 'probe', 'uuas', 'dspr', 'root_acc', 'nspr', 'sentences'];
  const rows = [
    { layer: 7, model: 'bert-base-uncased', probe: 'distance', uuas: 0.8153, dspr: 0.87, root_acc: null, nspr: null, sentences: 2416 },
    { model: 'bert-base-uncased', layer: 7, probe: 'depth', uuas: null, dspr: null, root_acc: 0.89, nspr: 0.86, sentences: 2416 },
  ];
  const csv = toCsv(rows, columns);
  assert.equal(
    csv,
    'model,layer,probe,uuas,dspr,root_acc,nspr,sentences\n' +
      'bert-base-uncased,7,distance,0.8153,0.87,,,2416\n' +
      'bert-base-uncased,7,depth,,,0.89,0.86,2416\n',
  );
});

test('cells are quoted when needed and read back to the same values', () => {
  const dir = tempDir();
  const rows = [{ word: 'say "hi", then\nleave', value: 1 / 3, ok: true, n: -0 }, { word: 'plain', value: 1e-12, ok: false, n: 42 }];
  const path = join(dir, 'results.csv');
  writeFileSync(path, toCsv(rows, ['word', 'value', 'ok', 'n']));
  const back = readCsv(path);
  assert.deepEqual(back.columns, ['word', 'value', 'ok', 'n']);
  assert.equal(back.rows[0].word, 'say "hi", then\nleave');
  assert.equal(parseCell(back.rows[0].value), 1 / 3);
  assert.equal(parseCell(back.rows[1].value), 1e-12);
  assert.equal(back.rows[0].ok, 'true');
  assert.equal(parseCell(back.rows[1].n), 42);
});

test('undeclared, duplicate and badly named columns are refused', () => {
  assert.throws(() => toCsv([{ a: 1, b: 2 }], ['a']), /column 'b' that is not in the declared columns/);
  assert.throws(() => toCsv([], ['a', 'a']), /given twice/);
  assert.throws(() => toCsv([], ['Bad Name']), /must match/);
  assert.throws(() => toCsv([], []), /at least one column/);
});

test('a broken CSV is an InputError naming the file and line', () => {
  const dir = tempDir();
  const path = join(dir, 'results.csv');
  writeFileSync(path, 'a,b\n1,2\n3,4,5\n');
  assert.throws(
    () => readCsv(path),
    (e: unknown) => e instanceof InputError && e.details.file === path && e.details.line === 3 && /fix/.test(e.message),
  );
  assert.equal(readFileSync(path, 'utf8').length > 0, true);
});
