import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cachedPath, ensureFile, partialPath } from '../src/corpus/download.js';
import type { DatasetEntry, RegistryFile } from '../src/corpus/registry.js';
import { InputError } from '../src/util/errors.js';
import { tempDir } from './helpers.js';

/**
 * Downloads against a local HTTP server on 127.0.0.1 acting as BERT_PROBE_DATA_MIRROR (a URL):
 * a full download, a resume with a Range request after a cut-off, a checksum mismatch (exit 2,
 * bad file deleted), --offline, and a folder mirror.
 */
const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => `line ${i}\n`).join(''));
const sha = createHash('sha256').update(body).digest('hex');

interface Hit {
  url: string;
  range?: string;
}

async function serve(opts: { cutAfter?: number } = {}): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    hits.push({ url: req.url ?? '', range: req.headers.range });
    if (!req.url?.startsWith('/toy-set/')) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const slice = body.subarray(start);
    res.writeHead(m ? 206 : 200, { 'content-length': String(slice.length), ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    if (opts.cutAfter !== undefined && hits.length === 1) {
      res.write(slice.subarray(0, opts.cutAfter));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

function toy(file: Partial<RegistryFile> = {}): { ds: DatasetEntry; f: RegistryFile } {
  const f: RegistryFile = { name: 'lines.txt', url: null, sha256: sha, size: body.length, ...file };
  const ds: DatasetEntry = { name: 'toy', description: 'test', licence: 'CC0', homepage: '', mirror: 'toy-set', format: 'text', files: [f], splits: { all: { files: [f.name] } }, counts: {} };
  return { ds, f };
}

function isolate(mirror: string): void {
  process.env.BERT_PROBE_CACHE = tempDir('bp-cache-');
  process.env.BERT_PROBE_DATA_MIRROR = mirror;
}

test('download through a URL mirror: verified, renamed into the cache, then served from cache', async () => {
  const { url, hits, server } = await serve();
  try {
    isolate(url);
    const { ds, f } = toy();
    const got = await ensureFile(ds, f);
    assert.equal(got.origin, 'download');
    assert.equal(hits[0]!.url, '/toy-set/lines.txt');
    assert.deepEqual(Buffer.from(got.bytes), body);
    assert.equal(got.path, cachedPath(ds, f));
    assert.deepEqual(readdirSync(join(got.path, '..')), ['lines.txt'], 'no temporary file left');
    const again = await ensureFile(ds, f, { offline: true });
    assert.equal(again.origin, 'cache');
    assert.equal(hits.length, 1);
  } finally {
    server.close();
  }
});

test('a cut-off download is resumed with an HTTP Range request', async () => {
  const { url, hits, server } = await serve({ cutAfter: 1234 });
  try {
    isolate(url);
    const { ds, f } = toy();
    await assert.rejects(ensureFile(ds, f), /interrupted after 1234 bytes|run again to resume/);
    const part = partialPath(cachedPath(ds, f));
    assert.equal(readFileSync(part).length, 1234);
    const got = await ensureFile(ds, f);
    assert.equal(hits.length, 2);
    assert.equal(hits[1]!.range, 'bytes=1234-');
    assert.deepEqual(Buffer.from(got.bytes), body);
    assert.ok(!existsSync(part));
  } finally {
    server.close();
  }
});

test('checksum mismatch: exit 2 with expected vs got, and the bad download deleted', async () => {
  const { url, server } = await serve();
  try {
    isolate(url);
    const { ds, f } = toy({ sha256: '0'.repeat(64) });
    const err = await ensureFile(ds, f).then(
      () => assert.fail('no error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InputError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /checksum mismatch/);
    assert.equal(err.details.expected, `sha256 ${'0'.repeat(64)}`);
    assert.equal(err.details.found, `sha256 ${sha}`);
    assert.match(err.details.fix!, /deleted/);
    const dir = join(cachedPath(ds, f), '..');
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    server.close();
  }
});

test('--offline never touches the network and names the missing file', async () => {
  const { url, hits, server } = await serve();
  try {
    isolate(url);
    const { ds, f } = toy();
    await assert.rejects(ensureFile(ds, f, { offline: true }), (e: unknown) => e instanceof InputError && /offline: toy file lines\.txt is not cached/.test(e.message) && e.message.includes(cachedPath(ds, f)));
    assert.equal(hits.length, 0);
  } finally {
    server.close();
  }
});

test('a folder mirror is read in place and checked; a bad copy there is reported, not deleted', async () => {
  const dir = tempDir('bp-mirror-');
  mkdirSync(join(dir, 'toy-set'));
  writeFileSync(join(dir, 'toy-set', 'lines.txt'), body);
  isolate(dir);
  const { ds, f } = toy();
  const got = await ensureFile(ds, f, { offline: true });
  assert.equal(got.origin, 'mirror');
  assert.equal(got.path, join(dir, 'toy-set', 'lines.txt'));
  const bad = toy({ sha256: 'f'.repeat(64) });
  await assert.rejects(ensureFile(bad.ds, bad.f), (e: unknown) => e instanceof InputError && /checksum mismatch/.test(e.message) && /mirror copy differs/.test(e.details.fix ?? ''));
  assert.ok(existsSync(join(dir, 'toy-set', 'lines.txt')));
});
