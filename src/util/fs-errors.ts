import { accessSync, constants, existsSync, statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { EXIT_BAD_INPUT, EXIT_RUNTIME, formatInputError } from './errors.js';

/**
 * Raw filesystem errors (`ENOSPC: no space left on device, write`) turned into messages a
 * person can act on (issue 15 item 8): the path, the cause in words, and a fix. The user's
 * path at fault (read-only, no permission, a file where a folder should be, a missing parent)
 * exits 2; a full disk exits 1 and says how many bytes were being written and how many are
 * free. The CLI translates every error it catches (src/cli/common.ts); writers that know the
 * size of what they write attach it (util/atomic.ts) so ENOSPC can say how much was needed.
 */
export class FileSystemError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code: string,
    readonly path: string | undefined,
  ) {
    super(message);
    this.name = 'FileSystemError';
  }
}

interface Errno extends Error {
  code?: string;
  path?: string;
  dest?: string;
  syscall?: string;
  /** Bytes the failed write was writing (set by writeFileAtomic and the streamed writers). */
  bytesNeeded?: number;
}

const USER_PATH: Record<string, [string, string]> = {
  EROFS: ['the file system is read-only', 'choose a writable place (--out DIR; BERT_PROBE_CACHE for the cache)'],
  EACCES: ['permission denied', 'choose a folder you can write to (--out DIR; BERT_PROBE_CACHE for the cache), or fix its permissions'],
  EPERM: ['operation not permitted', 'choose a folder you can write to (--out DIR; BERT_PROBE_CACHE for the cache), or fix its permissions'],
  ENOTDIR: ['a part of this path is a file, not a folder', 'choose a path whose parents are folders'],
  EISDIR: ['this is a folder where a file was expected', 'give a file path'],
  ENOENT: ['a folder on this path does not exist', 'create the parent folder first, or choose another path'],
  ENAMETOOLONG: ['the path is too long', 'choose a shorter path'],
  EEXIST: ['something already exists at this path', 'choose another path'],
};

/** Why the nearest existing ancestor of `path` cannot take a new folder (EROFS, EACCES, ENOTDIR), if it cannot. */
function ancestorProblem(path: string): string | undefined {
  let p = dirname(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  try {
    if (!statSync(p).isDirectory()) return 'ENOTDIR';
    accessSync(p, constants.W_OK);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code; // EROFS on a read-only mount, EACCES without permission
  }
}

function freeBytes(path: string): number | undefined {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = statfsSync(p);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

function mib(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} bytes`;
}

/** `err` as a FileSystemError when it is a raw errno error from fs; otherwise `err` itself. */
export function translateFsError(err: unknown): unknown {
  const e = err as Errno;
  if (!(err instanceof Error) || typeof e.code !== 'string' || err instanceof FileSystemError || 'exitCode' in err) return err;
  const path = e.path ?? e.dest;
  const op = e.syscall ? ` (${e.syscall})` : '';
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    const free = path ? freeBytes(path) : undefined;
    return new FileSystemError(
      formatInputError(e.code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on the device', {
        file: path,
        expected: e.bytesNeeded !== undefined ? `room to write ${mib(e.bytesNeeded)}` : 'room to write the file',
        found: `${free !== undefined ? `${mib(free)} free` : 'no free space'}${op}`,
        fix: 'free some space, or write elsewhere (--out DIR on another disk; BERT_PROBE_CACHE for the activation stores); rerun the same command to continue',
      }),
      EXIT_RUNTIME,
      e.code,
      path,
    );
  }
  // Recursive mkdir reports ENOENT on a read-only or unwritable parent: find the real cause.
  const code = e.code === 'ENOENT' && e.syscall === 'mkdir' && path ? ancestorProblem(path) ?? e.code : e.code;
  const known = USER_PATH[code];
  if (known && path) {
    return new FileSystemError(formatInputError(`cannot write here: ${known[0]}`, { file: path, found: `${code}${op}`, fix: known[1] }), EXIT_BAD_INPUT, code, path);
  }
  return err;
}
