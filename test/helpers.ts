import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
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

export function tempDir(prefix = 'bert-probe-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Run the real CLI (bin/bert-probe over dist/) in a child process with an isolated cache and
 * HF home, the data mirror set, and no TTY.
 */
export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; input?: string } = {}): SpawnSyncReturns<string> {
  const home = tempDir('bert-probe-home-');
  return spawnSync(process.execPath, [join(repoRoot, 'bin', 'bert-probe'), ...args], {
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
