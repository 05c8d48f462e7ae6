import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Repo root, from dist/test/helpers.js or test/helpers.ts. */
export const repoRoot = (() => {
  // test/helpers.ts → repo; dist/test/helpers.js → dist → repo
  const dir = dirname(dirname(fileURLToPath(import.meta.url)));
  return basename(dir) === 'dist' ? dirname(dir) : dir;
})();

/** ../shared beside the checkout (fixtures, data mirror, vocab); BERT_PROBE_SHARED overrides. */
export const sharedDir = resolve(process.env.BERT_PROBE_SHARED ?? join(repoRoot, '..', 'shared'));
export const fixturesDir = join(sharedDir, 'fixtures');
export const dataMirror = join(sharedDir, 'data');

/** Folders tempDir made in this test process, removed when it exits (BERT_PROBE_KEEP_TEST_TMP=1 keeps them to look at). */
const madeDirs: string[] = [];
process.on('exit', () => {
  if (process.env.BERT_PROBE_KEEP_TEST_TMP === '1') return;
  for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'bert-probe-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/**
 * Run the real CLI (bin/bert-probe over dist/) in a child process with an isolated cache and
 * HF home, the data mirror set, and no TTY.
 */
export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string } = {}): SpawnSyncReturns<string> {
  const home = tempDir('bert-probe-home-');
  // The executable itself, as a user runs it (its sh line starts node with the malloc tunables).
  return spawnSync(join(repoRoot, 'bin', 'bert-probe'), args, {
    cwd: opts.cwd ?? repoRoot,
    encoding: 'utf8',
    input: opts.input,
    maxBuffer: 256 * 1024 * 1024,
    env: {
      ...process.env,
      BERT_PROBE_CACHE: join(home, 'cache'),
      HF_HOME: join(home, 'hf'),
      BERT_PROBE_DATA_MIRROR: dataMirror,
      ...opts.env,
    },
  });
}

/**
 * node:test's `skip` option for a test that needs something the machine may lack: false when
 * `present`, otherwise the reason, which the test reporter prints beside the skipped test.
 * Under CI (BERT_PROBE_CI=1, set by .ci/run, which installs what the suite needs) a missing
 * prerequisite is a failure, not a skip: a failing test named after it is added to the file.
 * Pass `ciProvides: false` for what CI cannot have (a GPU).
 */
export function skipUnless(what: string, present: boolean, opts: { ciProvides?: boolean } = {}): false | string {
  if (present) return false;
  const reason = `skipped: ${what} is not available on this machine`;
  if (process.env.BERT_PROBE_CI === '1' && opts.ciProvides !== false) {
    test(`CI provides ${what}`, () => {
      assert.fail(`${what} is missing, so a test that CI must run was skipped; .ci/run should provide it`);
    });
  }
  return reason;
}

/** Whether `python3 -c 'import numpy'` works (the cross-checks against numpy need it). */
export const hasNumpy = (): boolean => spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
