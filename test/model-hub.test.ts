import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { InputError } from '../src/util/errors.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

/**
 * A local stand-in for the Hugging Face Hub (127.0.0.1, random port) answering the calls
 * @huggingface/hub makes (model info, tree listing, paths-info, resolve with Range), serving
 * ../shared/fixtures/tiny-bert read at test time. The download lands in a temporary HF cache.
 */
const REPO = 'test-org/tiny-bert';
const COMMIT = 'a'.repeat(40);
const FILES = ['config.json', 'tokenizer_config.json', 'vocab.txt', 'model.safetensors'];
const content = new Map<string, Buffer>();
const requests: { method: string; url: string; auth?: string }[] = [];
let server: Server;
let endpoint: string;
const hfHome = tempDir('bert-probe-hf-');

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  // Connection: close: the CLI runs below block this process's event loop (spawnSync), after which
  // the server's overdue keep-alive timers would race the client reusing a socket.
  res.writeHead(status, { 'Content-Type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json', 'Content-Length': String(buf.length), Connection: 'close', ...headers });
  res.end(buf);
}

function entry(path: string) {
  const b = content.get(path)!;
  const sha256 = createHash('sha256').update(b).digest('hex');
  const oid = createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
  return { type: 'file', path, oid, size: b.length, ...(path.endsWith('.safetensors') ? { lfs: { oid: sha256, size: b.length, pointerSize: 134 } } : {}), lastCommit: { id: COMMIT, title: 'add model', date: '2026-01-01T00:00:00.000Z' } };
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization });
  const url = new URL(req.url!, endpoint);
  const p = decodeURIComponent(url.pathname);
  const notFound = () => send(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepositoryNotFound' });
  let m: RegExpMatchArray | null;
  if ((m = p.match(/^\/api\/models\/(.+)\/revision\/([^/]+)$/))) {
    if (m[1] !== REPO) return notFound();
    return send(res, 200, { _id: 'x1', id: REPO, sha: COMMIT, private: false, lastModified: '2026-01-01T00:00:00.000Z', siblings: [...content.keys()].map((rfilename) => ({ rfilename })) });
  }
  if ((m = p.match(/^\/api\/models\/(.+)\/tree\/([^/]+)$/))) {
    if (m[1] !== REPO) return notFound();
    return send(res, 200, [...content.keys()].map((k) => entry(k)));
  }
  if ((m = p.match(/^\/api\/models\/(.+)\/paths-info\/([^/]+)$/)) && req.method === 'POST') {
    if (m[1] !== REPO) return notFound();
    const paths = (JSON.parse(body) as { paths: string[] }).paths;
    return send(res, 200, paths.filter((q) => content.has(q)).map((q) => entry(q)));
  }
  if ((m = p.match(/^\/(.+)\/resolve\/([^/]+)\/(.+)$/))) {
    const b = content.get(m[3]!);
    if (m[1] !== REPO || !b) return send(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const etag = `"${entry(m[3]!).lfs?.oid ?? entry(m[3]!).oid}"`;
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
    if (range) {
      const [s, e] = [Number(range[1]), Math.min(Number(range[2]), b.length - 1)];
      return send(res, 206, b.subarray(s, e + 1), { 'Content-Range': `bytes ${s}-${e}/${b.length}`, ETag: etag });
    }
    return send(res, 200, b, { ETag: etag });
  }
  notFound();
}

before(async () => {
  for (const f of FILES) content.set(f, readFileSync(join(fixturesDir, 'tiny-bert', f)));
  content.set('tf_model.h5', Buffer.from('not wanted: TensorFlow weights'));
  content.set('README.md', Buffer.from('# tiny'));
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.HF_HOME = hfHome;
  delete process.env.HF_HUB_CACHE;
  process.env.HF_ENDPOINT = endpoint;
  process.env.HF_TOKEN = 'hf_test_token';
});

after(() => {
  server.close();
});

test('downloads the fixture model from the Hub stand-in into the HF cache layout, then loads it --offline', async () => {
  const model = await loadModel(REPO, {});
  assert.equal(model.source.id, REPO);
  assert.equal(model.source.revision, 'main');
  assert.equal(model.config.numHiddenLayers, 3);
  const repo = join(hfHome, 'hub', 'models--test-org--tiny-bert');
  assert.equal(readFileSync(join(repo, 'refs', 'main'), 'utf8'), COMMIT);
  const snap = join(repo, 'snapshots', COMMIT);
  assert.equal(model.source.path, snap);
  assert.deepEqual(readdirSync(snap).sort(), [...FILES].sort(), 'only what a BERT checkpoint needs (no tf_model.h5, README)');
  // huggingface_hub's layout: snapshot files are relative symlinks into blobs/
  assert.ok(lstatSync(join(snap, 'model.safetensors')).isSymbolicLink());
  assert.match(readlinkSync(join(snap, 'model.safetensors')), /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
  assert.deepEqual(readFileSync(join(snap, 'model.safetensors')), content.get('model.safetensors'));
  assert.ok(requests.some((r) => r.auth === 'Bearer hf_test_token'), 'HF_TOKEN is sent');
  const weightsSha = createHash('sha256').update(content.get('model.safetensors')!).digest('hex');
  assert.equal(model.source.weightsSha256, weightsSha);

  const n = requests.length;
  const again = await loadModel(REPO, { offline: true });
  assert.equal(requests.length, n, '--offline makes no request');
  assert.equal(again.source.path, snap);
  assert.deepEqual(again.weights.get('embeddings.word_embeddings.weight')!.data, model.weights.get('embeddings.word_embeddings.weight')!.data);

  // the same through the CLI in a fresh process, endpoint unreachable
  const r = runCli(['model', 'info', REPO, '--offline', '--json'], { env: { HF_HOME: hfHome, HF_ENDPOINT: 'http://127.0.0.1:9' } });
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { path: string; parameters: number; format: string };
  assert.equal(info.path, snap);
  assert.equal(info.format, 'safetensors');
});

test('an unknown model on the Hub, and an uncached model --offline, are exit-2 errors that say what to do', async () => {
  await assert.rejects(loadModel('test-org/nope', {}), (e: unknown) => e instanceof InputError && /not found on the Hub/.test(e.message) && /--model/.test(e.message));
  const r = runCli(['model', 'info', 'test-org/not-cached', '--offline'], { env: { HF_HOME: hfHome } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /not in the Hugging Face cache/);
  assert.match(r.stderr, /fix: .*without --offline/);
  assert.equal(r.stdout, '');
  assert.ok(!existsSync(join(hfHome, 'hub', 'models--test-org--not-cached')));
});

test('random:HUB_ID fetches only config and tokenizer, never the weights', async () => {
  const home = tempDir('bert-probe-hf-');
  const saved = process.env.HF_HOME;
  process.env.HF_HOME = home;
  try {
    const n = requests.length;
    const m = await loadModel(`random:${REPO}`, { seed: 1 });
    assert.equal(m.source.randomInit, true);
    assert.equal(m.source.id, `random-init(${REPO})`);
    assert.equal(m.config.hiddenSize, 32);
    const fetched = requests.slice(n).filter((r) => r.url.includes('/resolve/')).map((r) => r.url.split('/').pop());
    assert.ok(fetched.includes('config.json') && fetched.includes('vocab.txt'), fetched.join(','));
    assert.ok(!fetched.includes('model.safetensors'), 'weights not downloaded');
  } finally {
    process.env.HF_HOME = saved;
  }
});

test('two loads racing for the same uncached model download it once', async () => {
  const home = tempDir('bert-probe-hf-');
  const saved = process.env.HF_HOME;
  process.env.HF_HOME = home;
  try {
    const n = requests.length;
    const [a, b] = await Promise.all([loadModel(REPO, {}), loadModel(REPO, {})]);
    assert.equal(a.source.path, b.source.path);
    const weightGets = requests.slice(n).filter((r) => r.method === 'GET' && r.url.endsWith('/model.safetensors'));
    assert.equal(weightGets.length, 2, 'one size probe (Range 0-0) and one body, not two of each');
    assert.ok(!existsSync(join(home, 'hub', 'models--test-org--tiny-bert', '.bert-probe-download.lock')));
    await assert.rejects(loadModel('test-org/nope', {}), InputError);
    assert.ok(!existsSync(join(home, 'hub', 'models--test-org--nope')), 'no empty folder for an unknown model');
  } finally {
    process.env.HF_HOME = saved;
  }
});

test('a cache laid out by Python huggingface_hub is reused offline: refs/<branch or tag>, or --revision <commit>', async () => {
  const home = tempDir('bert-probe-hf-');
  const saved = process.env.HF_HOME;
  process.env.HF_HOME = home;
  try {
    const { mkdirSync, symlinkSync, writeFileSync } = await import('node:fs');
    const repo = join(home, 'hub', 'models--someone--bert-copy');
    const commit = 'b'.repeat(40);
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
    mkdirSync(join(repo, 'refs'), { recursive: true });
    for (const f of FILES) {
      const etag = createHash('sha256').update(content.get(f)!).digest('hex');
      writeFileSync(join(repo, 'blobs', etag), content.get(f)!);
      symlinkSync(`../../blobs/${etag}`, join(repo, 'snapshots', commit, f));
    }
    writeFileSync(join(repo, 'refs', 'v1.0'), commit);
    const n = requests.length;
    const byTag = await loadModel('someone/bert-copy', { revision: 'v1.0', offline: true });
    const byCommit = await loadModel('someone/bert-copy', { revision: commit, offline: true });
    assert.equal(byTag.source.path, join(repo, 'snapshots', commit));
    assert.equal(byCommit.source.path, byTag.source.path);
    assert.equal(byTag.source.revision, 'v1.0');
    assert.equal(requests.length, n);
    // refs/main is absent: the default revision is not in the cache
    await assert.rejects(loadModel('someone/bert-copy', { offline: true }), /not in the Hugging Face cache/);
  } finally {
    process.env.HF_HOME = saved;
  }
});
