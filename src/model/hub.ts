import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { downloadFileToCacheDir, listFiles, modelInfo } from '@huggingface/hub';
import { acquireLock, writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import { hfHubCacheDir } from '../util/paths.js';
import type { Ui } from '../util/ui.js';

/**
 * The Hugging Face hub cache as `huggingface_hub` lays it out (file_download.py):
 * `<cache>/models--ORG--NAME/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>,
 * refs/<revision> = <commit>}`. Models Python fetched are found here, and what we download
 * lands in the same layout (via @huggingface/hub's downloadFileToCacheDir) so Python reuses it.
 */

export const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;
const COMMIT = /^[0-9a-f]{40}$/;

export function repoFolder(id: string, cache = hfHubCacheDir()): string {
  return join(cache, `models--${id.split('/').join('--')}`);
}

export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
}

function hubToken(): string | undefined {
  if (process.env.HF_TOKEN) return process.env.HF_TOKEN;
  if (process.env.HUGGING_FACE_HUB_TOKEN) return process.env.HUGGING_FACE_HUB_TOKEN;
  const tokenFile = process.env.HF_TOKEN_PATH ?? join(process.env.HF_HOME ?? join(process.env.HOME ?? '', '.cache', 'huggingface'), 'token');
  try {
    const t = readFileSync(tokenFile, 'utf8').trim();
    return t || undefined;
  } catch {
    return undefined;
  }
}

/** The snapshot folder for `id` at `revision` in the cache, or null when it is not there. */
export function cachedSnapshot(id: string, revision = 'main', cache = hfHubCacheDir()): string | null {
  const repo = repoFolder(id, cache);
  let commit: string | undefined;
  if (COMMIT.test(revision)) commit = revision;
  else {
    const ref = join(repo, 'refs', revision);
    if (existsSync(ref)) commit = readFileSync(ref, 'utf8').trim();
  }
  if (!commit) return null;
  const snap = join(repo, 'snapshots', commit);
  return existsSync(snap) && statSync(snap).isDirectory() ? snap : null;
}

/** Files a BERT checkpoint needs, chosen from a repo listing (safetensors preferred, no TF/Flax/ONNX copies). */
export function filesToFetch(names: string[]): string[] {
  const has = new Set(names);
  const want = ['config.json', 'tokenizer_config.json', 'special_tokens_map.json'].filter((f) => has.has(f));
  if (has.has('tokenizer.json')) want.push('tokenizer.json');
  if (has.has('vocab.txt')) want.push('vocab.txt');
  if (has.has('model.safetensors')) want.push('model.safetensors');
  else if (has.has('model.safetensors.index.json')) want.push('model.safetensors.index.json', ...names.filter((n) => /^model-\d+-of-\d+\.safetensors$/.test(n)));
  else if (has.has('pytorch_model.bin')) want.push('pytorch_model.bin');
  else if (has.has('pytorch_model.bin.index.json')) want.push('pytorch_model.bin.index.json', ...names.filter((n) => /^pytorch_model-\d+-of-\d+\.bin$/.test(n)));
  return want;
}

/** Whether a snapshot folder holds a loadable checkpoint (config, tokenizer, weights). */
export function snapshotComplete(dir: string): boolean {
  const files = new Set(readdirSync(dir));
  const weights = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'].some((f) => files.has(f));
  return files.has('config.json') && (files.has('tokenizer.json') || files.has('vocab.txt')) && weights;
}

function hubError(id: string, revision: string, err: unknown): InputError {
  const e = err as { statusCode?: number; message?: string; cause?: { code?: string } };
  const status = e.statusCode;
  if (status === 401 || status === 403) {
    return new InputError(`the Hub refused access to '${id}'`, {
      file: `${hubEndpoint()}/${id}`,
      expected: 'a public model, or a token with access',
      found: `HTTP ${status}: ${e.message ?? ''}`.trim(),
      fix: 'for gated or private models accept the terms on the model page and set HF_TOKEN; otherwise check the model id',
    });
  }
  if (status === 404) {
    return new InputError(`model '${id}' (revision ${revision}) was not found on the Hub`, {
      file: `${hubEndpoint()}/${id}`,
      expected: 'an existing model id and revision, e.g. bert-base-uncased or google-bert/bert-base-cased',
      found: `HTTP 404: ${e.message ?? ''}`.trim(),
      fix: 'check the spelling of --model and --revision, or pass a local checkpoint folder',
    });
  }
  return new InputError(`cannot download '${id}' from the Hub`, {
    file: hubEndpoint(),
    expected: 'a reachable Hugging Face Hub (HF_ENDPOINT)',
    found: `${e.message ?? String(err)}${e.cause?.code ? ` (${e.cause.code})` : ''}`,
    fix: `connect to the network, set HF_ENDPOINT to a mirror, copy the model into the HF cache (${hfHubCacheDir()}), or pass a local folder with --model`,
  });
}

/**
 * One downloader per repo folder at a time (parallel `--shard` runs share a cache): an
 * exclusive-create lock file holding our pid; a lock whose process is gone is taken over.
 */
export async function withRepoLock<T>(id: string, cacheDir: string, fn: () => Promise<T>, ui?: Ui): Promise<T> {
  const repo = repoFolder(id, cacheDir);
  mkdirSync(repo, { recursive: true });
  const release = (await acquireLock(join(repo, '.bert-probe-download.lock'), {
    pollMs: 500,
    onWait: (holder) => ui?.info(`waiting for another bert-probe (pid ${holder}) downloading ${id}`),
  })) as () => void;
  try {
    return await fn();
  } finally {
    release();
    // a failed first download (unknown model) leaves no empty repo folder behind
    if (readdirSync(repo).length === 0) rmSync(repo, { recursive: true, force: true });
  }
}

const API_TIMEOUT_MS = 30_000;

const TRANSIENT = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'EAI_AGAIN']);

/** Retry a download on transient network errors (3 tries, 1 s then 2 s apart); the partial file is restarted. */
async function withRetry<T>(fn: () => Promise<T>, ui?: Ui): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { cause?: { code?: string }; code?: string }).cause?.code ?? (err as { code?: string }).code;
      if (attempt >= 3 || !code || !TRANSIENT.has(code)) throw err;
      ui?.warn(`download interrupted (${code}); retrying (${attempt}/2)`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/**
 * Download what a BERT checkpoint needs from the Hub into the HF cache and return the snapshot
 * folder (`withoutWeights`: config and tokenizer only, for the random-init control). Respects HF_ENDPOINT and HF_TOKEN; a byte-count progress bar via `ui` on a TTY.
 */
export async function downloadModel(id: string, opts: { revision?: string; ui?: Ui; cache?: string; withoutWeights?: boolean } = {}): Promise<string> {
  const revision = opts.revision ?? 'main';
  const cacheDir = opts.cache ?? hfHubCacheDir();
  const hubUrl = hubEndpoint();
  const accessToken = hubToken();
  const creds = accessToken ? { accessToken } : {};
  let bar: ReturnType<Ui['bar']> | undefined;
  // Count body bytes of whole-file downloads for the progress bar.
  // API calls and size probes get a deadline (a hung connection must not hang the CLI); file bodies do not.
  const timedFetch: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(API_TIMEOUT_MS) });
  const progressFetch: typeof fetch = async (input, init) => {
    const range = new Headers(init?.headers).get('Range');
    const body = range !== 'bytes=0-0' && String(input instanceof Request ? input.url : input).includes('/resolve/');
    const res = await (body ? fetch : timedFetch)(input, init);
    if (!bar || !res.body || !body) return res;
    const b = bar;
    const counted = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          b.increment(chunk.byteLength);
          ctl.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
  // @huggingface/hub logs with console.debug/info (stdout); stdout is for results only.
  const { debug, info: consoleInfo } = console;
  console.debug = (...args: unknown[]) => opts.ui?.debug(args.map(String).join(' '));
  console.info = (...args: unknown[]) => opts.ui?.debug(args.map(String).join(' '));
  try {
    let commit = revision;
    if (!COMMIT.test(revision)) {
      const info = await withRetry(() => modelInfo({ name: id, revision, hubUrl, fetch: timedFetch, additionalFields: ['sha'], ...creds }), opts.ui);
      commit = (info as { sha?: string }).sha ?? '';
      if (!COMMIT.test(commit)) throw new Error(`the Hub gave no commit for revision ${revision}`);
    }
    const listing = await withRetry(async () => {
      const files: { path: string; size: number }[] = [];
      for await (const entry of listFiles({ repo: { type: 'model', name: id }, revision: commit, hubUrl, fetch: timedFetch, ...creds })) {
        if (entry.type === 'file') files.push({ path: entry.path, size: entry.size });
      }
      return files;
    }, opts.ui);
    const all = filesToFetch(listing.map((f) => f.path));
    const want = opts.withoutWeights ? all.filter((f) => !/safetensors|pytorch_model/.test(f)) : all;
    if (!all.includes('config.json') || !all.some((f) => /safetensors|pytorch_model/.test(f))) {
      throw new InputError(`'${id}' on the Hub has no BERT checkpoint bert-probe can read`, {
        file: `${hubUrl}/${id}`,
        expected: 'config.json and model.safetensors or pytorch_model.bin',
        found: listing.map((f) => f.path).slice(0, 12).join(', ') || 'no files',
        fix: 'choose a PyTorch/safetensors BERT checkpoint',
      });
    }
    const total = listing.filter((f) => want.includes(f.path)).reduce((a, f) => a + f.size, 0);
    opts.ui?.info(`downloading ${id}@${revision} (${(total / 1e6).toFixed(1)} MB) from ${hubUrl} into ${cacheDir}`);
    bar = opts.ui?.bar(`${id}`, total, '{bar} {percentage}% | {value}/{total} bytes | ETA {eta_formatted}');
    for (const path of want) {
      await withRetry(() => downloadFileToCacheDir({ repo: { type: 'model', name: id }, path, revision: commit, hubUrl, cacheDir, fetch: progressFetch, ...creds }), opts.ui);
    }
    bar?.stop();
    if (revision !== commit) writeFileAtomic(join(repoFolder(id, cacheDir), 'refs', revision), commit);
    return join(repoFolder(id, cacheDir), 'snapshots', commit);
  } catch (err) {
    bar?.stop();
    if (err instanceof InputError) throw err;
    throw hubError(id, revision, err);
  } finally {
    console.debug = debug;
    console.info = consoleInfo;
  }
}
