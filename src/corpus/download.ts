import { existsSync, mkdirSync, openSync, closeSync, writeSync, readFileSync, renameSync, rmSync, statSync, ftruncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import type { Ui } from '../util/ui.js';
import type { DatasetEntry, RegistryFile } from './registry.js';

import { sha256Hex } from './source.js';
/**
 * Getting registry files onto disk, verified.
 *
 * Where a file comes from: BERT_PROBE_DATA_MIRROR, a folder (read in place, never copied or
 * modified) or an http(s) URL laid out `<mirror>/<dataset mirror folder>/<file>`; else the
 * file's pinned upstream URL. Downloads land in cacheDir('data', <mirror folder>, <file>),
 * first as `.<file>.partial.tmp` (resumed with an HTTP Range request when a previous run was
 * cut off), then sha256-checked and renamed into place. A checksum mismatch deletes the bad
 * download and exits 2 with expected vs got. `offline` never touches the network and names the
 * missing file.
 */
export interface FetchOptions {
  offline?: boolean;
  ui?: Ui;
}

export interface LocalFile {
  path: string;
  bytes: Uint8Array;
  /** 'mirror' (local mirror folder), 'cache' or 'download'. */
  origin: 'mirror' | 'cache' | 'download';
  /** Verified: equals the registry's sha256. */
  sha256: string;
}

export function mirrorSetting(): { kind: 'folder'; path: string } | { kind: 'url'; url: string } | undefined {
  const m = process.env.BERT_PROBE_DATA_MIRROR;
  if (!m) return undefined;
  if (/^https?:\/\//i.test(m)) return { kind: 'url', url: m.replace(/\/+$/, '') };
  return { kind: 'folder', path: m.startsWith('file://') ? new URL(m).pathname : m };
}

export function cachedPath(ds: DatasetEntry, f: RegistryFile): string {
  return cacheDir('data', ds.mirror, f.name);
}

export function partialPath(finalPath: string): string {
  return join(dirname(finalPath), `.${finalPath.split('/').pop()}.partial.tmp`);
}


function mismatch(where: string, f: RegistryFile, got: string, deleted: boolean): InputError {
  return new InputError('checksum mismatch', {
    file: where,
    expected: `sha256 ${f.sha256}`,
    found: `sha256 ${got}`,
    fix: deleted ? 'the bad download was deleted; run the command again to download it afresh (check BERT_PROBE_DATA_MIRROR if it repeats)' : 'this mirror copy differs from the pinned upstream file: replace it, or unset BERT_PROBE_DATA_MIRROR',
  });
}

/** Return the verified bytes of one registry file, fetching it if needed. */
export async function ensureFile(ds: DatasetEntry, f: RegistryFile, opts: FetchOptions = {}): Promise<LocalFile> {
  const mirror = mirrorSetting();
  const finalPath = cachedPath(ds, f);
  if (mirror?.kind === 'folder') {
    const p = join(mirror.path, ds.mirror, f.name);
    if (existsSync(p)) {
      const bytes = readFileSync(p);
      const got = sha256Hex([bytes]);
      if (got !== f.sha256) throw mismatch(p, f, got, false);
      return { path: p, bytes, origin: 'mirror', sha256: got };
    }
  }
  if (existsSync(finalPath)) {
    const bytes = readFileSync(finalPath);
    const got = sha256Hex([bytes]);
    if (got === f.sha256) return { path: finalPath, bytes, origin: 'cache', sha256: got };
    rmSync(finalPath, { force: true });
    opts.ui?.warn(`cached ${finalPath} failed its sha256 check (got ${got}); deleted, fetching again`);
  }
  const url = mirror?.kind === 'url' ? `${mirror.url}/${ds.mirror}/${f.name.split('/').map(encodeURIComponent).join('/')}` : f.url;
  if (opts.offline) {
    throw new InputError(`offline: ${ds.name} file ${f.name} is not cached`, {
      file: finalPath,
      expected: mirror?.kind === 'folder' ? `the file here or at ${join(mirror.path, ds.mirror, f.name)}` : 'the file in the cache',
      found: 'no such file',
      fix: `run \`bert-probe data fetch ${ds.name}\` while online, or set BERT_PROBE_DATA_MIRROR to a folder that has ${ds.mirror}/${f.name}`,
    });
  }
  if (!url) {
    throw new InputError(`${ds.name} file ${f.name} has no public URL`, {
      expected: `BERT_PROBE_DATA_MIRROR pointing at a folder or URL with ${ds.mirror}/${f.name}`,
      found: mirror?.kind === 'folder' ? `no ${join(mirror.path, ds.mirror, f.name)}` : 'no mirror set',
      fix: f.note ?? 'set BERT_PROBE_DATA_MIRROR',
    });
  }
  const bytes = await download(url, finalPath, f, opts.ui);
  return { path: finalPath, bytes, origin: 'download', sha256: f.sha256 };
}

/** Download `url` to `finalPath` via a resumable partial file; verify sha256; rename into place. */
export async function download(url: string, finalPath: string, f: RegistryFile, ui?: Ui): Promise<Uint8Array> {
  mkdirSync(dirname(finalPath), { recursive: true });
  const part = partialPath(finalPath);
  let have = existsSync(part) ? statSync(part).size : 0;
  if (have >= f.size) {
    rmSync(part, { force: true });
    have = 0;
  }
  const headers: Record<string, string> = { 'user-agent': 'bert-probe' };
  if (have > 0) headers.range = `bytes=${have}-`;
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: 'follow' });
  } catch (err) {
    throw new RuntimeFailure(`cannot download ${url}: ${(err as Error).message}${have ? ` (${have} bytes kept in ${part}; run again to resume)` : ''}. Offline? Use --offline with a mirror (BERT_PROBE_DATA_MIRROR) or a filled cache.`, { cause: err });
  }
  if (res.status === 416) {
    rmSync(part, { force: true });
    return download(url, finalPath, f, ui);
  }
  if (res.status !== 200 && res.status !== 206) {
    throw new RuntimeFailure(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  }
  const resumed = res.status === 206 && have > 0;
  if (resumed) ui?.info(`resuming ${f.name} at ${have} of ${f.size} bytes`);
  const fd = openSync(part, resumed ? 'a' : 'w');
  if (!resumed) {
    ftruncateSync(fd, 0);
    have = 0;
  }
  const bar = ui?.bar(f.name.split('/').pop()!, f.size, '{bar} {percentage}% | {value}/{total} bytes | ETA {eta_formatted}');
  bar?.increment(have);
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        let off = 0;
        while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
        have += chunk.byteLength;
        bar?.increment(chunk.byteLength);
      }
    }
  } catch (err) {
    throw new RuntimeFailure(`download of ${url} interrupted after ${have} bytes: ${(err as Error).message} (kept in ${part}; run again to resume)`, { cause: err });
  } finally {
    closeSync(fd);
    bar?.stop();
  }
  const bytes = readFileSync(part);
  const got = sha256Hex([bytes]);
  if (got !== f.sha256) {
    rmSync(part, { force: true });
    throw mismatch(url, f, got, true);
  }
  renameSync(part, finalPath);
  return bytes;
}
