import { attnName, layerName } from '../util/names.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { availableParallelism } from 'node:os';
import type * as Ort from 'onnxruntime-node';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import type { Ui } from '../util/ui.js';
import { noMlmHead, onesHeadMask, resolveFilter, validateBatch } from './forward-batch.js';
import { GRAPH_VERSION, ONNX_OPSET, buildEncoderGraph, buildMlmGraph } from './onnx-graph.js';
import type { KeepHeads } from './prune-heads.js';
import type { ArrayTensor, BertConfig, Engine, ForwardBatch, ForwardOutput, LoadedModel, OutputFilter } from './types.js';

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
  /** Intra-op threads (default: one per core). */
  threads?: number;
  /**
   * Build the pruned model with only these heads per layer (0-based; onnx-graph.ts). Built in
   * memory, not cached; ask it for no attentions of a layer left without heads.
   */
  keepHeads?: KeepHeads;
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

/** Cache file for a model's graph: <weightsSha256>-<config/graph tag>[.mlm].onnx. */
export function graphCachePath(model: LoadedModel, part: 'encoder' | 'mlm' = 'encoder'): string {
  const tag = createHash('sha256')
    .update(JSON.stringify({ config: model.config, graph: GRAPH_VERSION, opset: ONNX_OPSET }))
    .digest('hex')
    .slice(0, 12);
  return cacheDir('onnx', `${model.source.weightsSha256}-${tag}${part === 'mlm' ? '.mlm' : ''}.onnx`);
}

export class OnnxEngine implements Engine {
  readonly kind = 'onnx' as const;
  readonly backend: string;
  readonly config: BertConfig;
  /** Where the encoder graph is cached, and whether this engine built it (false: reused). */
  readonly graphPath: string;
  readonly graphBuilt: boolean;
  private mlmSession: Promise<Ort.InferenceSession> | null = null;

  private constructor(
    private readonly ort: OrtModule,
    private readonly model: LoadedModel,
    private readonly session: Ort.InferenceSession,
    private readonly sessionOptions: Ort.InferenceSession.SessionOptions,
    graph: { path: string; built: boolean },
    device: 'cpu' | 'cuda',
    private readonly ui?: Ui,
  ) {
    this.backend = `onnxruntime-${device}`;
    this.config = model.config;
    this.graphPath = graph.path;
    this.graphBuilt = graph.built;
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
      graphOptimizationLevel: 'all',
      // No busy-waiting between ops: on a shared machine spinning threads burn the cores other
      // work needs (measured here under load: same or better wall time, ~15% less CPU time).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
      // Native warnings would bypass the Ui (and --quiet); errors still surface as exceptions.
      logSeverityLevel: 3,
    };
    const path = opts.keepHeads ? '(pruned, in memory)' : graphCachePath(model, 'encoder');
    const { session, built } = opts.keepHeads
      ? { session: await ort.InferenceSession.create(buildEncoderGraph(model.config, model.weights, opts.keepHeads), sessionOptions), built: true }
      : await openCached(ort, path, () => buildEncoderGraph(model.config, model.weights), sessionOptions, device, opts.ui);
    opts.ui?.debug(`onnx: ${built ? 'built' : 'reused'} graph ${path}; ${sessionOptions.intraOpNumThreads} threads, ${device}`);
    return new OnnxEngine(ort, model, session, sessionOptions, { path, built }, device, opts.ui);
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

    const int64 = (a: Int32Array) => new this.ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [B, T]);
    const feeds = {
      input_ids: int64(batch.inputIds),
      attention_mask: int64(batch.attentionMask),
      token_type_ids: int64(batch.tokenTypeIds),
      head_mask: new this.ort.Tensor('float32', batch.headMask ? Float32Array.from(batch.headMask) : onesHeadMask(cfg), [L, cfg.numAttentionHeads]),
    };
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds, fetches);
    } catch (err) {
      throw new RuntimeFailure(`onnxruntime failed on a batch of ${B} x ${T}: ${(err as Error).message}`, { cause: err });
    }
    for (const h of filter.hidden) out.hiddenStates[h] = asArray(results[layerName(h)]!);
    for (const a of filter.attentions) out.attentions[a - 1] = asArray(results[attnName(a)]!);
    if (filter.mlm) {
      const mlm = await this.mlm();
      const last = results[layerName(L)]!;
      const at = filter.mlmPositions;
      let hidden = last;
      if (at) {
        // The head is position-wise: run it on the asked rows only, as one [1, n, H] sequence.
        const H = cfg.hiddenSize;
        const src = last.data as Float32Array;
        const rows = new Float32Array(at.length * H);
        at.forEach((p, i) => rows.set(src.subarray(p * H, (p + 1) * H), i * H));
        hidden = new this.ort.Tensor('float32', rows, [1, at.length, H]);
      }
      const r = await mlm.run({ hidden }, ['mlm_logits']);
      out.mlmLogits = asArray(r.mlm_logits!);
      if (at) out.mlmLogits.shape = [at.length, cfg.vocabSize];
    }
    return out;
  }

  /** The MLM head session, built (or read from the cache) on first use. */
  private mlm(): Promise<Ort.InferenceSession> {
    this.mlmSession ??= openCached(
      this.ort,
      graphCachePath(this.model, 'mlm'),
      () => buildMlmGraph(this.model.config, this.model.weights),
      this.sessionOptions,
      this.backend === 'onnxruntime-cuda' ? 'cuda' : 'cpu',
      this.ui,
    ).then((r) => r.session);
    return this.mlmSession;
  }

  async dispose(): Promise<void> {
    await this.session.release();
    if (this.mlmSession) await (await this.mlmSession).release();
  }
}

function asArray(t: Ort.Tensor): ArrayTensor {
  return { data: t.data as Float32Array, shape: t.dims.map(Number) };
}

/** Open the cached graph; build and cache it when absent (or unreadable: rebuilt once). */
async function openCached(
  ort: OrtModule,
  path: string,
  build: () => Uint8Array,
  options: Ort.InferenceSession.SessionOptions,
  device: 'cpu' | 'cuda',
  ui?: Ui,
): Promise<{ session: Ort.InferenceSession; built: boolean }> {
  if (existsSync(path)) {
    try {
      return { session: await ort.InferenceSession.create(path, options), built: false };
    } catch (err) {
      if (device === 'cuda') throw cudaFailure(err);
      ui?.warn(`cached ONNX graph ${path} could not be loaded (${(err as Error).message.split('\n')[0]}); rebuilding it`);
    }
  }
  const spinner = ui?.spinner('building the ONNX graph');
  let bytes: Uint8Array;
  try {
    bytes = build();
  } catch (err) {
    spinner?.fail('building the ONNX graph failed');
    throw err;
  }
  let cached = true;
  try {
    writeFileAtomic(path, bytes);
    spinner?.succeed(`ONNX graph cached in ${path}`);
  } catch (err) {
    // A read-only or full cache folder costs a rebuild next time, not this run.
    cached = false;
    spinner?.succeed('ONNX graph built');
    ui?.warn(`could not cache the ONNX graph in ${path} (${(err as Error).message}); set BERT_PROBE_CACHE to a writable folder to reuse it`);
  }
  try {
    return { session: cached ? await ort.InferenceSession.create(path, options) : await ort.InferenceSession.create(bytes, options), built: true };
  } catch (err) {
    if (device === 'cuda') throw cudaFailure(err);
    throw new RuntimeFailure(`onnxruntime could not load the graph it was given (${path}): ${(err as Error).message}`, { cause: err });
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
