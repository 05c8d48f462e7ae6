import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';

/**
 * The one way we write files: to a temporary name in the same folder, fsync, then rename, so a
 * killed process never leaves a half-written file under the final name (rename is atomic on
 * POSIX within one filesystem). Temporary names start with '.' and end in '.tmp' so readers
 * and resumers can ignore and clean them.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (err) {
    throw withBytesNeeded(err, data, path);
  }
  try {
    const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
    for (const part of parts) {
      let off = 0;
      while (off < part.byteLength) off += writeSync(fd, part, off, part.byteLength - off);
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw withBytesNeeded(err, data, path);
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/**
 * writeFileAtomic on libuv's thread pool: the same temporary name, fsync and rename, while this
 * thread goes on (the extraction pipeline writes shard k while shard k+1 runs through the model).
 * `data` must not change until the promise settles. A temporary file still being written when
 * the process exits (an interrupt) is removed at exit, as held locks are.
 */
export async function writeFileAtomicAsync(path: string, data: readonly Uint8Array[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  inFlight.add(tmp);
  installExitHook();
  try {
    let fh;
    try {
      fh = await open(tmp, 'w');
    } catch (err) {
      throw withBytesNeeded(err, data, path);
    }
    try {
      for (const part of data) {
        let off = 0;
        while (off < part.byteLength) off += (await fh.write(part, off, part.byteLength - off)).bytesWritten;
      }
      await fh.sync();
    } catch (err) {
      await fh.close();
      await rm(tmp, { force: true });
      throw withBytesNeeded(err, data, path);
    }
    await fh.close();
    await rename(tmp, path);
  } finally {
    inFlight.delete(tmp);
  }
}

/** Attach the size being written to a write error (util/fs-errors.ts says it on ENOSPC). */
function withBytesNeeded(err: unknown, data: string | Uint8Array | readonly Uint8Array[], path: string): unknown {
  if (err && typeof err === 'object') {
    const e = err as { path?: string };
    if (!e.path || isTempName(basename(e.path))) e.path = path; // name the file the user will look for, not our temporary name
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data instanceof Uint8Array ? data.byteLength : data.reduce((a, b) => a + b.byteLength, 0);
    (err as { bytesNeeded?: number }).bytesNeeded = bytes;
  }
  return err;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Whether a process still runs (signal 0 probes without signalling; EPERM means it exists but
 * belongs to someone else). Used to tell a live writer's temporary file or lock from a dead one's.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Locks held by this process, removed at exit (also on SIGINT/SIGTERM, which exit through
 * process.exit) so a stopped run never blocks the next one.
 */
const heldLocks = new Set<string>();
/** Temporary files of writeFileAtomicAsync calls not yet renamed, removed at exit. */
const inFlight = new Set<string>();
let exitHook = false;

function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const l of heldLocks) rmSync(l, { force: true });
    for (const t of inFlight) rmSync(t, { force: true });
  });
}

/**
 * An exclusive-create lock file holding our pid, for one writer at a time (the Hub download
 * lock, an activation store, a results folder). A lock whose process is gone is taken over;
 * a live holder is waited for (`wait`), or the call returns its pid (`wait: false`).
 * Returns a release function, or `{ holder }` when not waiting and another process holds it.
 */
export async function acquireLock(lock: string, opts: { wait?: boolean; onWait?: (holder: number) => void; pollMs?: number } = {}): Promise<(() => void) | { holder: number }> {
  mkdirSync(dirname(lock), { recursive: true });
  let told = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      heldLocks.add(lock);
      installExitHook();
      return () => {
        heldLocks.delete(lock);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = NaN;
      try {
        holder = Number(readFileSync(lock, 'utf8').trim() || NaN);
      } catch {
        continue; // released between our open and read
      }
      // A lock file without a pid is one being written this instant, or left by a crash
      // between create and write: treat an empty one older than a poll as stale.
      const emptyAndOld = !Number.isInteger(holder) && Date.now() - mtimeMs(lock) > 2000;
      if ((Number.isInteger(holder) && !processAlive(holder)) || emptyAndOld) {
        rmSync(lock, { force: true });
        continue;
      }
      if (opts.wait === false && Number.isInteger(holder)) return { holder };
      if (!told && Number.isInteger(holder)) opts.onWait?.(holder);
      told = true;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
    }
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}
