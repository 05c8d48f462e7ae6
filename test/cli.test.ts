import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../src/cli/index.js';
import { repoRoot, runCli } from './helpers.js';

test('--help lists every command with a one-line example', () => {
  const names = buildProgram().commands.map((c) => c.name());
  assert.ok(names.length > 0, 'no commands registered');
  const r = runCli(['--help']);
  assert.equal(r.status, 0, r.stderr);
  for (const name of names) {
    assert.match(r.stdout, new RegExp(`^\\s+${name}\\b`, 'm'), `${name} missing from --help`);
    assert.match(r.stdout, new RegExp(`\\$ bert-probe ${name}\\b`), `${name} has no example in --help`);
  }
});

test('--version prints the package version', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = runCli(['--version']);
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('bad usage exits 2 with a hint', () => {
  const unknownCommand = runCli(['no-such-command']);
  assert.equal(unknownCommand.status, 2);
  assert.match(unknownCommand.stderr, /unknown command/);
  const unknownOption = runCli(['--no-such-option']);
  assert.equal(unknownOption.status, 2);
  assert.match(unknownOption.stderr, /unknown option/);
});
