import { attnName, layerName } from '../util/names.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import type { Ui } from '../util/ui.js';
import { noMlmHead, onesHeadMask, resolveFilter, validateBatch } from './forward-batch.js';
import { GRAPH_VERSION, ONNX_OPSET, buildEncoderGraph, buildMlmGraph } from './onnx-graph.js';
import type { KeepHeads } from './prune-heads.js';
import { randomRecipe, releaseDrawnWeights } from './random.js';
import type { GraphBuildRequest } from './onnx-build-worker.js';
import { WorkerClient } from '../util/worker-client.js';
import type { WorkerFeed, WorkerRequest } from './onnx-worker.js';
import type { ArrayTensor, BertConfig, Engine, ForwardBatch, ForwardOutput, LoadedModel, OutputFilter, Precision } from './types.js';

/**
 * The onnx engine: the graph from onnx-graph.ts, run by onnxruntime-node. CPU execution
 * provider with one intra-op thread per core; the CUDA provider with `--device cuda` where the
 * user installed onnxruntime-node's CUDA binaries. Built graphs are cached under
 * cacheDir('onnx') keyed by the weights' sha256 (plus the config and graph version, so a
 * changed builder never reuses a stale graph), written atomically, rebuilt when absent.
 */
export interface OnnxEngineOptions {
  device?: 'cpu' | 'cuda';
  ui?: Ui;
  /** Intra-op threads (default: one per core this process may run on). */
  threads?: number;
  /**
   * onnxruntime's intra-op threads busy-wait between ops (allow_spinning; default false). Only
   * matters with 2+ threads; off because on a shared machine spinning burns cores others need.
   */
  spinning?: boolean;
  /**
   * Build the pruned model with only these heads per layer (0-based; onnx-graph.ts). Built in
   * memory, not cached; ask it for no attentions of a layer left without heads.
   */
  keepHeads?: KeepHeads;
  /** fp32 (default) or int8 dynamic quantisation of the linear layers (onnx-graph.ts). */
  precision?: Precision;
  /**
   * Run the session on a worker thread (default true), so the caller's thread can pool and
   * write one batch while the next runs (onnx-worker.ts). false: on the calling thread.
   */
  worker?: boolean;
}

/**
 * The worker script beside this module: onnx-worker.js when compiled, onnx-worker.ts when run
 * from source under a TypeScript loader (the worker inherits the loader through execArgv);
 * null if absent, and the session then runs on the calling thread.
 */
const WORKER_URL = ((): URL | null => {
  const url = new URL(`./onnx-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : null;
})();

/** The throwaway graph-build worker (onnx-build-worker.ts), resolved as WORKER_URL is; null if absent. */
const BUILD_WORKER_URL = ((): URL | null => {
  const url = new URL(`./onnx-build-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  return existsSync(fileURLToPath(url)) ? url : null;
})();

/**
 * Where the hidden-states-only graph (GraphKind) serves hidden-states-only forwards, per
 * precision: where it measured faster (docs/precision.md, "Where the time goes": int8 1.06x;
 * fp32 within noise, so fp32 keeps one graph).
 */
const HIDDEN_GRAPH: Record<Precision, boolean> = { fp32: false, int8: true };

type Outputs = Record<string, { data: Float32Array; dims: number[] }>;

/** Where the encoder session runs: this thread or a worker thread. */
interface Runner {
  run(feeds: Record<string, WorkerFeed>, fetches: string[]): Promise<Outputs>;
  release(): Promise<void>;
}

class LocalRunner implements Runner {
  constructor(
    private readonly ort: OrtModule,
    readonly session: Ort.InferenceSession,
  ) {}

  async run(feeds: Record<string, WorkerFeed>, fetches: string[]): Promise<Outputs> {
    const tensors: Record<string, Ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) tensors[name] = new this.ort.Tensor(f.type, f.data, f.dims);
    const results = await this.session.run(tensors, fetches);
    return Object.fromEntries(fetches.map((n) => [n, { data: results[n]!.data as Float32Array, dims: results[n]!.dims.map(Number) }]));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** The session on a worker thread (src/model/onnx-worker.ts). */
class WorkerRunner implements Runner {
  private constructor(private readonly client: WorkerClient<{ outputs: Outputs }>) {}

  static async start(source: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<WorkerRunner> {
    return new WorkerRunner(await WorkerClient.start<{ outputs: Outputs }>(WORKER_URL!, { source, options }, 'onnxruntime'));
  }

  async run(feeds: Record<string, WorkerFeed>, fetches: string[]): Promise<Outputs> {
    const request: Omit<WorkerRequest, 'id'> = { feeds, fetches };
    return (await this.client.call(request, Object.values(feeds).map((f) => f.data.buffer as ArrayBuffer))).outputs;
  }

  release(): Promise<void> {
    return this.client.terminate();
  }
}

type OrtModule = typeof Ort;

let ortModule: Promise<OrtModule> | undefined;

/** onnxruntime-node, loaded on first use (its native binding is large). */
export function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').then((m) => ((m as unknown as { default?: OrtModule }).default ?? m) as OrtModule);
  return ortModule;
}

/** True when onnxruntime-node and its CPU binding load. */
export async function onnxAvailable(): Promise<boolean> {
  try {
    await loadOrt();
    return true;
  } catch {
    return false;
  }
}

/**
 * Cache file for a model's graph: <weightsSha256>-<config/graph tag>[.int8][.hidden][.mlm].onnx
 * (`hidden`: the hidden-states-only graph with fused attention, see GraphKind).
 */
export function graphCachePath(model: LoadedModel, part: 'encoder' | 'hidden' | 'mlm' = 'encoder', precision: Precision = 'fp32'): string {
  const tag = createHash('sha256')
    .update(JSON.stringify({ config: model.config, graph: GRAPH_VERSION, opset: ONNX_OPSET }))
    .digest('hex')
    .slice(0, 12);
  const suffix = part === 'mlm' ? '.mlm' : `${precision === 'fp32' ? '' : `.${precision}`}${part === 'hidden' ? '.hidden' : ''}`;
  return cacheDir('onnx', `${model.source.weightsSha256}-${tag}${suffix}.onnx`);
}

/**
 * The two encoder graphs of one model (onnx-graph.ts): `full` returns attention maps and takes a
 * head mask; `hidden` returns hidden states only and runs each layer's attention as one fused
 * onnxruntime op (MultiHeadAttention). A forward that asks for no attention map and gives no
 * head mask runs on `hidden` where HIDDEN_GRAPH says it is faster; each is opened on first use.
 */
export type GraphKind = 'full' | 'hidden';

export class OnnxEngine implements Engine {
  readonly kind = 'onnx' as const;
  readonly backend: string;
  readonly precision: Precision;
  readonly config: BertConfig;
  /** onnxruntime intra-op threads. */
  readonly threads: number;
  /** Where the encoder graph is cached, and whether this engine built it (false: reused). */
  readonly graphPath: string;
  readonly graphBuilt: boolean;
  private mlmSession: Promise<Ort.InferenceSession> | null = null;
  private readonly runners = new Map<GraphKind, Promise<Runner>>();

  private constructor(
    private readonly ort: OrtModule,
    private readonly model: LoadedModel,
    first: { kind: GraphKind; runner: Runner },
    private readonly sessionOptions: Ort.InferenceSession.SessionOptions,
    graph: { path: string; built: boolean },
    private readonly device: 'cpu' | 'cuda',
    precision: Precision,
    private readonly load: (source: string | Uint8Array) => Promise<Runner>,
    private readonly pruned: boolean,
    private readonly ui?: Ui,
  ) {
    this.backend = `onnxruntime-${device}`;
    this.precision = precision;
    this.config = model.config;
    this.threads = sessionOptions.intraOpNumThreads ?? 1;
    this.graphPath = graph.path;
    this.graphBuilt = graph.built;
    this.runners.set(first.kind, Promise.resolve(first.runner));
  }

  /** Which graph serves a forward: `hidden` when it is enabled for this precision and nothing needs the full one. */
  graphFor(filter: { attentions: Set<number> }, batch: ForwardBatch): GraphKind {
    const useHidden = HIDDEN_GRAPH[this.precision] && this.device === 'cpu' && !this.pruned && filter.attentions.size === 0 && !batch.headMask;
    return useHidden ? 'hidden' : 'full';
  }

  /** The runner of a graph kind, opened (and built and cached when absent) on first use; both stay open once used. */
  private runner(kind: GraphKind): Promise<Runner> {
    let r = this.runners.get(kind);
    if (!r) {
      const path = graphCachePath(this.model, kind === 'hidden' ? 'hidden' : 'encoder', this.precision);
      r = openCached(path, graphBuilder(this.model, { kind: 'encoder', precision: this.precision, attentionOutputs: kind === 'full' }), this.load, this.device, this.ui).then((o) => {
        this.ui?.debug(`onnx: ${o.built ? 'built' : 'reused'} ${kind} graph ${path}`);
        return o.session;
      });
      this.runners.set(kind, r);
    }
    return r;
  }

  static async create(model: LoadedModel, opts: OnnxEngineOptions = {}): Promise<OnnxEngine> {
    const ort = await loadOrt();
    const device = opts.device ?? 'cpu';
    if (device === 'cuda') assertCudaInstalled(ort);
    const sessionOptions: Ort.InferenceSession.SessionOptions = {
      executionProviders: device === 'cuda' ? [{ name: 'cuda' }] : ['cpu'],
      // One thread per core this process may run on (os.cpus() counts, minus any affinity mask).
      intraOpNumThreads: opts.threads ?? Math.max(1, availableParallelism()),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      // 'basic' (constant folding, redundant nodes): the graph already has the fused ops worth
      // having (BiasGelu/Gelu, MultiHeadAttention, onnx-graph.ts). 'all' adds onnxruntime 1.30's
      // SkipLayerNormalization fusion, measured slower on this CPU (fp32 1.07x, int8 1.16x
      // faster without it, interleaved batch by batch on one core; docs/precision.md).
      graphOptimizationLevel: 'basic',
      // No busy-waiting between ops: on a shared machine spinning threads burn the cores other
      // work needs (measured here under load: same or better wall time, ~15% less CPU time).
      extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
      // No arena for the CPU allocator: onnxruntime's arena keeps every chunk it ever grew to
      // (in doubling steps, as batches of longer sentences come), so RSS climbed through the
      // whole extraction. Measured on 1,024 PTB sentences through bert-base pinned to one core:
      // peak RSS 1,420 MiB without, 1,594 MiB with, extraction no slower (58 s vs 64 s).
      enableCpuMemArena: false,
      // Native warnings would bypass the Ui (and --quiet); errors still surface as exceptions.
      logSeverityLevel: 3,
    };
    const precision = opts.precision ?? 'fp32';
    const path = opts.keepHeads ? '(pruned, in memory)' : graphCachePath(model, 'encoder', precision);
    const useWorker = (opts.worker ?? true) && WORKER_URL !== null;
    const load = async (source: string | Uint8Array): Promise<Runner> => {
      if (useWorker) {
        try {
          return await WorkerRunner.start(source, sessionOptions);
        } catch (err) {
          // e.g. run from source under a loader that worker threads do not inherit; a bad graph fails again below
          opts.ui?.debug(`onnx: no worker thread (${(err as Error).message.split('\n')[0]}); running on the calling thread`);
        }
      }
      return new LocalRunner(ort, await createSession(ort, source, sessionOptions));
    };
    const buildFull = graphBuilder(model, { kind: 'encoder', precision, attentionOutputs: true });
    let first: { kind: GraphKind; runner: Runner };
    let built: boolean;
    if (opts.keepHeads) {
      first = { kind: 'full', runner: await load(buildEncoderGraph(model.config, model.weights, opts.keepHeads, { precision })) };
      built = true;
    } else if (HIDDEN_GRAPH[precision] && device === 'cpu') {
      // Hidden states are what most runs ask for: open that graph now, the full one (built and
      // cached here all the same) when a forward first asks for attention maps or a head mask.
      built = (await cacheGraph(path, buildFull, opts.ui)).built;
      const hiddenPath = graphCachePath(model, 'hidden', precision);
      const hidden = await openCached(hiddenPath, graphBuilder(model, { kind: 'encoder', precision, attentionOutputs: false }), load, device, opts.ui);
      first = { kind: 'hidden', runner: hidden.session };
    } else {
      const full = await openCached(path, buildFull, load, device, opts.ui);
      first = { kind: 'full', runner: full.session };
      built = full.built;
    }
    // (the int8 path may have built the full graph and found the hidden one cached)
    if (!opts.keepHeads) releaseDrawnWeights(model.weights);
    opts.ui?.debug(`onnx: ${built ? 'built' : 'reused'} graph ${path}; opened the ${first.kind} graph; ${sessionOptions.intraOpNumThreads} threads, ${device}, ${precision}, ${useWorker ? 'worker thread' : 'main thread'}`);
    return new OnnxEngine(ort, model, first, sessionOptions, { path, built }, device, precision, load, Boolean(opts.keepHeads), opts.ui);
  }

  async forward(batch: ForwardBatch, want?: OutputFilter): Promise<ForwardOutput> {
    const cfg = this.config;
    const L = cfg.numHiddenLayers;
    validateBatch(batch, cfg);
    const filter = resolveFilter(want, L, batch);
    if (filter.mlm && !this.model.hasMlmHead) throw noMlmHead();
    const { batchSize: B, seqLen: T } = batch;
    const out: ForwardOutput = { hiddenStates: new Array(L + 1).fill(undefined), attentions: new Array(L).fill(undefined) };

    // Fetch only what was asked for (plus the last hidden state when the MLM head needs it).
    const fetches: string[] = [];
    for (const h of [...filter.hidden].sort((a, b) => a - b)) fetches.push(layerName(h));
    for (const a of [...filter.attentions].sort((x, y) => x - y)) fetches.push(attnName(a));
    if (filter.mlm && !filter.hidden.has(L)) fetches.push(layerName(L));
    if (fetches.length === 0) return out;

    const int64 = (a: Int32Array): WorkerFeed => ({ type: 'int64', data: BigInt64Array.from(a, (v) => BigInt(v)), dims: [B, T] });
    const kind = this.graphFor(filter, batch);
    const feeds: Record<string, WorkerFeed> = {
      input_ids: int64(batch.inputIds),
      attention_mask: int64(batch.attentionMask),
      token_type_ids: int64(batch.tokenTypeIds),
    };
    if (kind === 'full') feeds.head_mask = { type: 'float32', data: batch.headMask ? Float32Array.from(batch.headMask) : onesHeadMask(cfg), dims: [L, cfg.numAttentionHeads] };
    let results: Outputs;
    try {
      results = await (await this.runner(kind)).run(feeds, fetches);
    } catch (err) {
      throw new RuntimeFailure(`onnxruntime failed on a batch of ${B} x ${T}: ${(err as Error).message}`, { cause: err });
    }
    for (const h of filter.hidden) out.hiddenStates[h] = asArray(results[layerName(h)]!);
    for (const a of filter.attentions) out.attentions[a - 1] = asArray(results[attnName(a)]!);
    if (filter.mlm) {
      const mlm = await this.mlm();
      const last = results[layerName(L)]!;
      const at = filter.mlmPositions;
      let hidden = new this.ort.Tensor('float32', last.data, last.dims);
      if (at) {
        // The head is position-wise: run it on the asked rows only, as one [1, n, H] sequence.
        const H = cfg.hiddenSize;
        const src = last.data;
        const rows = new Float32Array(at.length * H);
        at.forEach((p, i) => rows.set(src.subarray(p * H, (p + 1) * H), i * H));
        hidden = new this.ort.Tensor('float32', rows, [1, at.length, H]);
      }
      const r = await mlm.run({ hidden }, ['mlm_logits']);
      out.mlmLogits = { data: r.mlm_logits!.data as Float32Array, shape: r.mlm_logits!.dims.map(Number) };
      if (at) out.mlmLogits.shape = [at.length, cfg.vocabSize];
    }
    return out;
  }

  /** The MLM head session, built (or read from the cache) on first use. */
  private mlm(): Promise<Ort.InferenceSession> {
    this.mlmSession ??= openCached(
      graphCachePath(this.model, 'mlm'),
      graphBuilder(this.model, { kind: 'mlm' }),
      (source) => createSession(this.ort, source, this.sessionOptions),
      this.backend === 'onnxruntime-cuda' ? 'cuda' : 'cpu',
      this.ui,
    ).then((r) => r.session);
    return this.mlmSession;
  }

  async dispose(): Promise<void> {
    for (const r of this.runners.values()) await (await r.catch(() => null))?.release();
    if (this.mlmSession) await (await this.mlmSession).release();
  }
}

/**
 * One graph of a model to build: its bytes on this thread, or, for random-init weights
 * (random.ts randomRecipe), drawn, built and written to the cache by a throwaway worker
 * (onnx-build-worker.ts), so that neither the weights nor the build's garbage (~1.2 GB for
 * bert-base) sit in this process while onnxruntime loads the graph (issue 9, peak memory).
 */
interface GraphBuilder {
  bytes: () => Uint8Array;
  inWorker?: Omit<GraphBuildRequest, 'path'>;
}

function graphBuilder(model: LoadedModel, graph: GraphBuildRequest['graph']): GraphBuilder {
  const recipe = randomRecipe(model.weights);
  return {
    bytes: () => {
      const bytes = graph.kind === 'mlm' ? buildMlmGraph(model.config, model.weights) : buildEncoderGraph(model.config, model.weights, undefined, { precision: graph.precision, attentionOutputs: graph.attentionOutputs });
      // The graph holds the weights now: lazily drawn random ones are let go (drawn again,
      // identically, if something asks), not kept beside the session's copy for the whole run.
      releaseDrawnWeights(model.weights);
      return bytes;
    },
    ...(recipe && BUILD_WORKER_URL ? { inWorker: { ...recipe, graph } } : {}),
  };
}

function createSession(ort: OrtModule, source: string | Uint8Array, options: Ort.InferenceSession.SessionOptions): Promise<Ort.InferenceSession> {
  return typeof source === 'string' ? ort.InferenceSession.create(source, options) : ort.InferenceSession.create(source, options);
}

function asArray(t: { data: Float32Array; dims: number[] }): ArrayTensor {
  return { data: t.data, shape: t.dims };
}

/** Open the cached graph with `load`; build and cache it when absent (or unreadable: rebuilt once). */
async function openCached<S>(
  path: string,
  build: GraphBuilder,
  load: (source: string | Uint8Array) => Promise<S>,
  device: 'cpu' | 'cuda',
  ui?: Ui,
): Promise<{ session: S; built: boolean }> {
  if (existsSync(path)) {
    try {
      return { session: await load(path), built: false };
    } catch (err) {
      if (device === 'cuda') throw cudaFailure(err);
      ui?.warn(`cached ONNX graph ${path} could not be loaded (${(err as Error).message.split('\n')[0]}); rebuilding it`);
    }
  }
  const { bytes } = await cacheGraph(path, build, ui, true);
  try {
    return { session: await load(bytes ?? path), built: true };
  } catch (err) {
    if (device === 'cuda') throw cudaFailure(err);
    throw new RuntimeFailure(`onnxruntime could not load the graph it was given (${path}): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Build the graph and write it to the cache unless the file is there (or `force`). Returns
 * whether it built, and the bytes when they could not be cached (a read-only or full cache
 * folder costs a rebuild next time, not this run).
 */
async function cacheGraph(path: string, build: GraphBuilder, ui?: Ui, force = false): Promise<{ built: boolean; bytes?: Uint8Array }> {
  if (!force && existsSync(path)) return { built: false };
  const spinner = ui?.spinner('building the ONNX graph');
  if (build.inWorker) {
    try {
      const worker = await WorkerClient.start(BUILD_WORKER_URL!, { ...build.inWorker, path } satisfies GraphBuildRequest, 'ONNX graph build');
      await worker.terminate();
      spinner?.succeed(`ONNX graph cached in ${path}`);
      return { built: true };
    } catch (err) {
      // e.g. an unwritable cache folder, or run from source without a loader for workers: build here
      ui?.debug(`onnx: no graph build on a worker thread (${(err as Error).message.split('\n')[0]}); building on this thread`);
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = build.bytes();
  } catch (err) {
    spinner?.fail('building the ONNX graph failed');
    throw err;
  }
  try {
    writeFileAtomic(path, bytes);
    spinner?.succeed(`ONNX graph cached in ${path}`);
    return { built: true };
  } catch (err) {
    spinner?.succeed('ONNX graph built');
    ui?.warn(`could not cache the ONNX graph in ${path} (${(err as Error).message}); set BERT_PROBE_CACHE to a writable folder to reuse it`);
    return { built: true, bytes };
  }
}

const CUDA_FIX =
  'install the CUDA build of onnxruntime-node (ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node, with CUDA 12 and cuDNN 9 on the library path; the .npmrc of bert-probe skips it by default), or use --device cpu';

/** onnxruntime-node lists CUDA as supported but not bundled: its provider library must be installed. */
/** --device cuda: a clear error (exit 2) when this onnxruntime-node has no CUDA provider installed. */
export function assertCudaInstalled(ort: OrtModule): void {
  const list = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled: boolean }[] }).listSupportedBackends?.() ?? [];
  if (!list.some((b) => b.name === 'cuda')) {
    throw new InputError('--device cuda: this onnxruntime-node has no CUDA execution provider', {
      expected: 'an onnxruntime-node build for Linux x64 or Windows x64 with CUDA support',
      found: `execution providers: ${list.map((b) => b.name).join(', ') || 'cpu'}`,
      fix: CUDA_FIX,
    });
  }
  // Checked before asking onnxruntime, which would otherwise log a native error on stderr.
  const dir = bindingDir();
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  if (dir && !existsSync(join(dir, lib))) {
    throw new InputError('--device cuda: onnxruntime-node\'s CUDA provider library is not installed', {
      file: join(dir, lib),
      expected: 'the CUDA provider library beside the onnxruntime-node binding',
      found: 'no such file (the default install ships the CPU provider only)',
      fix: CUDA_FIX,
    });
  }
}

/** Folder of onnxruntime-node's native binding (bin/napi-vN/PLATFORM/ARCH), if found. */
function bindingDir(): string | null {
  try {
    const root = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin');
    for (const napi of readdirSync(root)) {
      const dir = join(root, napi, process.platform, process.arch);
      if (existsSync(dir)) return dir;
    }
  } catch {
    // Unusual layout: let onnxruntime itself report.
  }
  return null;
}

function cudaFailure(err: unknown): InputError {
  return new InputError('--device cuda: the CUDA execution provider could not be started', {
    expected: 'onnxruntime-node\'s CUDA provider library, CUDA 12 and cuDNN 9, and a visible GPU',
    found: (err as Error).message.split('\n')[0],
    fix: CUDA_FIX,
  });
}
