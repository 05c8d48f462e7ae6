import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { fsync } from 'node:fs';
import { rename } from 'node:fs/promises';
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

/** The folder made, a temporary name beside `path` opened for writing (a failure says what `data` needed). */
function openTemp(path: string, data: string | Uint8Array | readonly Uint8Array[]): { tmp: string; fd: number } {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    return { tmp, fd: openSync(tmp, 'w') };
  } catch (err) {
    throw withBytesNeeded(err, data, path);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const { tmp, fd } = openTemp(path, data);
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
 * A file written in pieces at positions (any order) under its temporary name, then made final by
 * `commit` (fsync on libuv's thread pool, close, rename) or removed by `discard`. The activation
 * store streams a shard's vectors into one as sentences are pooled, so they are never all in
 * memory. A temporary file still open when the process exits (an interrupt) is removed at exit,
 * as held locks are.
 */
export class AtomicFile {
  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly fd: number,
  ) {}

  static open(path: string): AtomicFile {
    const { tmp, fd } = openTemp(path, []);
    inFlight.add(tmp);
    installExitHook();
    return new AtomicFile(path, tmp, fd);
  }

  /** Write `data` at byte `position` (whole; a failure discards the file). */
  writeAt(data: Uint8Array, position: number): void {
    try {
      let off = 0;
      while (off < data.byteLength) off += writeSync(this.fd, data, off, data.byteLength - off, position + off);
    } catch (err) {
      this.discard();
      throw withBytesNeeded(err, data, this.path);
    }
  }

  async commit(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => fsync(this.fd, (err) => (err ? reject(err) : resolve())));
      closeSync(this.fd);
      await rename(this.tmp, this.path);
    } catch (err) {
      this.discard();
      throw withBytesNeeded(err, [], this.path);
    }
    inFlight.delete(this.tmp);
  }

  discard(): void {
    if (!inFlight.delete(this.tmp)) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    rmSync(this.tmp, { force: true });
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
/** Temporary files of AtomicFiles not yet renamed, removed at exit. */
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
