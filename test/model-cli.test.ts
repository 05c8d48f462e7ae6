import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir, runCli, tempDir } from './helpers.js';
import { P, writeTinyCheckpoint, zipStored } from './model-craft.js';

/** `bert-probe model info` through the real CLI (needs `npm run build`): results and exit-2 errors. */

test('model info on each fixture: config, parameters, format, dtype, tokenizer sample, path', () => {
  for (const [name, format, dtype, mlm] of [
    ['tiny-bert', 'safetensors', 'F32', true],
    ['tiny-bert-legacy-bin', 'pytorch', 'F32', true],
    ['tiny-bert-model-only-f16', 'safetensors', 'F16', false],
  ] as const) {
    const dir = join(fixturesDir, name);
    const r = runCli(['model', 'info', dir, '--json', '--sample', 'Electrodynamics!']);
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout) as Record<string, any>;
    assert.equal(info.path, dir);
    assert.equal(info.format, format);
    assert.equal(info.dtype, dtype);
    assert.equal(info.hasMlmHead, mlm);
    assert.equal(info.config.numHiddenLayers, 3);
    assert.equal(info.parameters, 1_005_568);
    assert.deepEqual(info.tokenizer.tokens, ['[CLS]', 'electro', '##dy', '##nami', '##cs', '!', '[SEP]']);
  }
  const human = runCli(['model', 'info', join(fixturesDir, 'tiny-bert')]);
  assert.equal(human.status, 0);
  assert.match(human.stdout, /parameters +1,005,568 \(BertModel\)/);
  assert.match(human.stdout, /weights +safetensors, F32, sha256 [0-9a-f]{64}/);
});

test('model info random:CONFIG is labelled random-init', () => {
  const r = runCli(['model', 'info', `random:${join(fixturesDir, 'tiny-bert', 'config.json')}`, '--json', '--seed', '3']);
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Record<string, any>;
  assert.equal(info.randomInit, true);
  assert.equal(info.id, 'random-init(tiny-bert)');
  assert.equal(info.path, null);
});

test('a pytorch_model.bin whose pickle calls os.system: exit 2, the message names the global, nothing runs', () => {
  const dir = tempDir();
  writeTinyCheckpoint(dir, { noWeights: true });
  const marker = join(dir, 'pwned');
  const pkl = Buffer.concat([P.proto(), P.global('os', 'system'), P.str(`touch ${marker}`), Buffer.from([0x85]), P.reduce(), P.stop()]);
  writeFileSync(join(dir, 'pytorch_model.bin'), zipStored([['archive/data.pkl', pkl]]));
  const r = runCli(['model', 'info', dir]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /pytorch_model\.bin:archive\/data\.pkl.*global 'os\.system'/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  assert.equal(existsSync(marker), false);
});

test('truncated safetensors, missing config, wrong shapes: exit 2 naming file and tensor', () => {
  const trunc = tempDir();
  writeTinyCheckpoint(trunc);
  const st = join(trunc, 'model.safetensors');
  truncateSync(st, readFileSync(st).length - 4);
  let r = runCli(['model', 'info', trunc]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`${st}.*tensor '[\\w.]+' is truncated`));

  const noCfg = tempDir();
  writeTinyCheckpoint(noCfg);
  rmSync(join(noCfg, 'config.json'));
  r = runCli(['model', 'info', noCfg]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, new RegExp(`${join(noCfg, 'config.json')}: config.json is missing`));
  assert.match(r.stderr, /fix: /);

  const shapes = tempDir();
  writeTinyCheckpoint(shapes, { rename: (n) => (n === 'encoder.layer.0.attention.self.key.weight' ? null : n), extra: { 'encoder.layer.0.attention.self.key.weight': { dtype: 'F32', shape: [8, 9], data: new Float32Array(72) } } });
  r = runCli(['model', 'info', shapes]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /model\.safetensors: tensor 'encoder\.layer\.0\.attention\.self\.key\.weight' has the wrong shape/);
  assert.match(r.stderr, /expected: \[8, 8\]/);
  assert.match(r.stderr, /found: +\[8, 9\]/);

  r = runCli(['model', 'info', './no/such/folder']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /no such folder/);
});
