import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
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
  const fd = openSync(tmp, 'w');
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
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
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
