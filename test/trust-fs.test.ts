/**
 * Issue 15 item 8: filesystem errors name the path, the cause and a fix, and exit 2 where the
 * user's path is at fault (they used to be raw errno text with exit 1, a read-only folder even
 * reported as `ENOENT ... mkdir`). ENOSPC is in test/faults.test.ts (it needs a small tmpfs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystemError, translateFsError } from '../src/util/fs-errors.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

const RUN = ['structural', '--data', 'ptb', '--model', join(fixturesDir, 'tiny-bert'), '--limit', '5', '--max-epochs', '1'];

test('--out under a file: exit 2, "a part of this path is a file", no raw errno line', () => {
  const f = join(tempDir(), 'afile');
  writeFileSync(f, 'x');
  const r = runCli([...RUN, '--out', join(f, 'run')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${f}/run: cannot write here: a part of this path is a file, not a folder`));
  assert.match(r.stderr, /fix: /);
  assert.doesNotMatch(r.stderr, /^error: ENOTDIR/m);
});

test('--out on a read-only file system: exit 2, says read-only (not ENOENT)', (t) => {
  const mnt = join(tempDir(), 'ro');
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    const why = `cannot mount a read-only tmpfs here (${(m.stderr || '').trim() || `exit ${m.status}`})`;
    console.log(`# read-only test skipped: ${why}`);
    t.skip(why);
    return;
  }
  try {
    const r = runCli([...RUN, '--out', join(mnt, 'run')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /cannot write here: the file system is read-only/);
    assert.match(r.stderr, /found: +EROFS/);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

test('BERT_PROBE_CACHE under a file: exit 2 naming the cache path', () => {
  const f = join(tempDir(), 'notadir');
  writeFileSync(f, 'x');
  const r = runCli(['extract', '--data', 'ptb:test', '--model', join(fixturesDir, 'tiny-bert'), '--layers', '1'], { env: { BERT_PROBE_CACHE: join(f, 'cache') } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /notadir\/cache.*cannot write here|cannot write here/);
});

test('translateFsError: ENOSPC says the bytes needed and exits 1; unknown errors pass through', () => {
  const e = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', path: join(tempDir(), 'x.json'), bytesNeeded: 3 << 20 });
  const t = translateFsError(e) as FileSystemError;
  assert.ok(t instanceof FileSystemError);
  assert.equal(t.exitCode, 1);
  assert.match(t.message, /no space left on the device/);
  assert.match(t.message, /room to write 3\.0 MiB/);
  assert.match(t.message, /free/);
  const other = new Error('boom');
  assert.equal(translateFsError(other), other);
});
