import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import yauzl from 'yauzl';
import { InputError } from '../util/errors.js';

/**
 * Raw input for the readers: a named chunk of bytes (a file on disk or a zip member, read
 * whole into memory; corpora here are tens of MB at most). `name` is what errors print:
 * `path` or `archive.zip:member`.
 */
export interface SourceText {
  name: string;
  text: string;
}


/** Decode UTF-8 strictly; invalid bytes → InputError with the byte offset and line. A BOM is dropped. */
export function decodeUtf8(bytes: Uint8Array, name: string): string {
  if (bytes.byteLength === 0) {
    throw new InputError('empty file', { file: name, expected: 'at least one sentence', found: '0 bytes', fix: 'check the path, or re-download the file' });
  }
  // isUtf8 validates natively (fast, no copy); toString then decodes without a second check
  if (isUtf8(bytes)) {
    const nul = bytes.indexOf(0);
    if (nul >= 0) {
      let line = 1;
      for (let i = 0; i < nul; i++) if (bytes[i] === 0x0a) line++;
      throw new InputError('binary data, not text (a NUL byte)', { file: name, line, offset: nul, expected: 'UTF-8 text', found: 'byte 0x00', fix: 'pass a text file (this looks like a binary or UTF-16 file; convert UTF-16 with iconv -f utf-16 -t utf-8)' });
    }
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }
  const offset = firstInvalidUtf8(bytes);
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  throw new InputError('invalid UTF-8', {
    file: name,
    line,
    offset,
    expected: 'UTF-8 text',
    found: `byte 0x${(bytes[offset] ?? 0).toString(16).padStart(2, '0')}`,
    fix: 'convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8)',
  });
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    let min = 0;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    else return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return b.length;
}

export function sha256Hex(parts: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? 'file not found' : `cannot read file (${code})`, {
      file: path,
      expected: 'a readable corpus file',
      found: code === 'ENOENT' ? 'nothing at this path' : String((err as Error).message),
      fix: 'check the path, or use a registry name (bert-probe data list)',
    });
  }
}

/**
 * The one way any input text is read (corpora, `embed --file`, stdin as `-`): bytes, then strict
 * UTF-8 (invalid bytes and binary refused with the byte offset and line, exit 2).
 */
export function readTextFile(path: string): string {
  return decodeUtf8(path === '-' ? readStdin() : readBytes(path), path === '-' ? '<stdin>' : path);
}

function readStdin(): Uint8Array {
  try {
    return readFileSync(0);
  } catch (err) {
    throw new InputError('cannot read standard input', { file: '-', expected: 'text piped in', found: (err as NodeJS.ErrnoException).code ?? String(err), fix: 'pipe a file in, or pass --file PATH' });
  }
}

/** Read the members of a zip archive that `want` accepts, in archive order, into memory (yauzl). */
export function readZipMembers(zipPath: string, want: (member: string) => boolean, bytes?: Uint8Array): Promise<{ name: string; bytes: Uint8Array }[]> {
  const buf = Buffer.from(bytes ?? readBytes(zipPath));
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) {
        reject(new InputError('not a readable zip archive', { file: zipPath, expected: 'a zip file', found: String(err?.message ?? err), fix: 're-download the archive' }));
        return;
      }
      const out: { name: string; bytes: Uint8Array }[] = [];
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.endsWith('/') || !want(entry.fileName)) {
          zip.readEntry();
          return;
        }
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) {
            reject(new InputError('cannot read zip member', { file: `${zipPath}:${entry.fileName}`, found: String(e?.message), fix: 're-download the archive' }));
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', (se) => reject(new InputError('corrupt zip member', { file: `${zipPath}:${entry.fileName}`, found: se.message, fix: 're-download the archive' })));
          stream.on('end', () => {
            out.push({ name: entry.fileName, bytes: Buffer.concat(chunks) });
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.on('error', (e: Error) => reject(new InputError('corrupt zip archive', { file: zipPath, found: e.message, fix: 're-download the archive' })));
      zip.readEntry();
    });
  });
}

/** Simple glob for member names: `*` matches within a path segment, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${re}$`);
}

/** Split text into lines; accepts \n and \r\n. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.endsWith('\r')) lines[i] = l.slice(0, -1);
  }
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The result every reader returns; load.ts wraps it into a Corpus. */
export interface ReadResult {
  sentences: import('./types.js').Sentence[];
  skipped: Record<string, number>;
  warnings: string[];
}

export function emptyResult(): ReadResult {
  return { sentences: [], skipped: {}, warnings: [] };
}

export function countSkip(r: ReadResult, what: string, n = 1): void {
  r.skipped[what] = (r.skipped[what] ?? 0) + n;
}
