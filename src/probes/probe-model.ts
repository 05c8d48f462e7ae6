/**
 * A probe written once: its parameters, inputs and a build() that states its loss and outputs
 * with the ops of src/probes/graph. compileProbe derives the loss, loss-and-gradient and predict
 * graphs from it and runs them with onnxruntime-node's public API.
 */
import { mulberry32 } from '../util/random.js';
import { AutodiffGraph } from './graph/graph.js';
import { GraphSession } from './graph/session.js';
import type { Dim, ElemType, Feed, Graph, Value } from './graph/types.js';

export type { Dim, ElemType, Feed, Graph, Value } from './graph/types.js';

/** How a parameter starts: 'kaiming-uniform' is torch.nn.Linear's default weight init. */
export type ParamInit = 'zeros' | 'ones' | { uniform: [number, number] } | { normal: number } | 'xavier' | 'kaiming-uniform';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: ParamInit;
}

export interface ProbeDefinition {
  name: string;
  params: ParamSpec[];
  inputs: { name: string; shape: Dim[]; type?: ElemType }[];
  /** loss: a scalar, the mean over the batch's items; outputs: what predict returns. */
  build(g: Graph, params: Record<string, Value>, inputs: Record<string, Value>, mode: 'train' | 'eval'): { loss: Value; outputs: Record<string, Value> };
}

/** A dropout mask the train graph expects as an input (drawn by the trainer). */
export interface MaskSpec {
  name: string;
  /** Shape in the probe's dims: numbers and symbolic dims named by the probe's inputs. */
  shape: readonly Dim[];
  /** Drop probability; kept entries are 1/(1−p). */
  p: number;
}

/** A parameter's name and shape, as the graphs take it. */
export interface ParamShape {
  name: string;
  shape: number[];
}

/**
 * A probe's three graphs as ONNX bytes, with what it takes to feed them: plain data, so a
 * worker thread can open them (src/probes/train-worker.ts).
 */
export interface ProbeGraphs {
  name: string;
  params: ParamShape[];
  /** Dropout masks of the train graph; lossAndGrad needs them among its feeds. */
  masks: MaskSpec[];
  /** Loss and `grad.<param>` for every parameter. */
  train: Uint8Array;
  /** Loss only. */
  eval: Uint8Array;
  /** The definition's outputs; null when it declares none. */
  predict: Uint8Array | null;
}

/** A probe's graphs opened in onnxruntime sessions (in this thread). */
export interface ProbeSessions {
  /** `into`: arrays (one per parameter) to write the gradients into, returned as `grads`. */
  lossAndGrad(params: Float32Array[], feeds: Record<string, Feed>, into?: Float32Array[]): Promise<{ loss: number; grads: Float32Array[] }>;
  loss(params: Float32Array[], feeds: Record<string, Feed>): Promise<number>;
  predict(params: Float32Array[], feeds: Record<string, Feed>): Promise<Record<string, { data: Float32Array; dims: number[] }>>;
  dispose(): Promise<void>;
}

export interface CompiledProbe extends ProbeSessions {
  readonly definition: ProbeDefinition;
  /** Dropout masks of the train graph; lossAndGrad needs them among its feeds. */
  readonly masks: readonly MaskSpec[];
  /** The graphs and session options, to open the same probe elsewhere (a worker thread). */
  readonly graphs: ProbeGraphs;
  readonly options: CompileOptions;
}

export interface CompileOptions {
  device?: 'cpu' | 'cuda';
  /** Threads for onnxruntime's intra-op pool (default: the machine's parallelism). */
  threads?: number;
  /** Let onnxruntime's idle threads busy-wait (default false). */
  spinning?: boolean;
}

/** The graphs of a probe in onnxruntime sessions. */
class OnnxProbeSessions implements ProbeSessions {
  constructor(
    private readonly name: string,
    private readonly params: readonly ParamShape[],
    private readonly train: GraphSession,
    private readonly evalLoss: GraphSession,
    private readonly predictor: GraphSession | null,
  ) {}

  private feeds(params: Float32Array[], feeds: Record<string, Feed>): Record<string, Feed> {
    const specs = this.params;
    if (params.length !== specs.length) throw new Error(`probe '${this.name}': ${params.length} parameter arrays for ${specs.length} parameters`);
    const all: Record<string, Feed> = { ...feeds };
    specs.forEach((p, k) => {
      const n = p.shape.reduce((a, b) => a * b, 1);
      if (params[k]!.length !== n) throw new Error(`probe '${this.name}': parameter '${p.name}' has ${params[k]!.length} values, expected ${n} ([${p.shape.join(', ')}])`);
      all[p.name] = { data: params[k]!, dims: p.shape };
    });
    return all;
  }

  async lossAndGrad(params: Float32Array[], feeds: Record<string, Feed>, into?: Float32Array[]): Promise<{ loss: number; grads: Float32Array[] }> {
    const fetches: Record<string, Feed> = {};
    if (into) {
      if (into.length !== this.params.length) throw new Error(`probe '${this.name}': ${into.length} gradient arrays for ${this.params.length} parameters`);
      this.params.forEach((p, k) => (fetches[`grad.${p.name}`] = { data: into[k]!, dims: p.shape }));
    }
    const r = await this.train.run(this.feeds(params, feeds), fetches);
    return { loss: Number(r.loss!.data[0]), grads: this.params.map((p) => r[`grad.${p.name}`]!.data as Float32Array) };
  }

  async loss(params: Float32Array[], feeds: Record<string, Feed>): Promise<number> {
    const r = await this.evalLoss.run(this.feeds(params, feeds));
    return Number(r.loss!.data[0]);
  }

  async predict(params: Float32Array[], feeds: Record<string, Feed>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    if (!this.predictor) throw new Error(`probe '${this.name}' declares no outputs to predict`);
    return (await this.predictor.run(this.feeds(params, feeds))) as Record<string, { data: Float32Array; dims: number[] }>;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.train.dispose(), this.evalLoss.dispose(), this.predictor?.dispose()]);
  }
}

/** Open a probe's graphs in onnxruntime sessions (in the calling thread). */
export async function openProbeGraphs(graphs: ProbeGraphs, opts: CompileOptions = {}): Promise<ProbeSessions> {
  const session = (bytes: Uint8Array) => GraphSession.create(bytes, { device: opts.device, threads: opts.threads, spinning: opts.spinning });
  const [t, l, p] = await Promise.all([session(graphs.train), session(graphs.eval), graphs.predict ? session(graphs.predict) : Promise.resolve(null)]);
  return new OnnxProbeSessions(graphs.name, graphs.params, t, l, p);
}

class OnnxProbe implements CompiledProbe {
  readonly masks: readonly MaskSpec[];
  constructor(
    readonly definition: ProbeDefinition,
    readonly graphs: ProbeGraphs,
    readonly options: CompileOptions,
    private readonly sessions: ProbeSessions,
  ) {
    this.masks = graphs.masks;
  }
  lossAndGrad(params: Float32Array[], feeds: Record<string, Feed>, into?: Float32Array[]) {
    return this.sessions.lossAndGrad(params, feeds, into);
  }
  loss(params: Float32Array[], feeds: Record<string, Feed>) {
    return this.sessions.loss(params, feeds);
  }
  predict(params: Float32Array[], feeds: Record<string, Feed>) {
    return this.sessions.predict(params, feeds);
  }
  dispose() {
    return this.sessions.dispose();
  }
}

/** Build a definition into a fresh graph: its params, inputs and the build() results. */
export function buildProbeGraph(def: ProbeDefinition, mode: 'train' | 'eval', precision: 'float32' | 'float64' = 'float32'): { g: AutodiffGraph; params: Value[]; loss: Value; outputs: Record<string, Value> } {
  const g = new AutodiffGraph({ precision, training: mode === 'train' });
  const params: Record<string, Value> = {};
  for (const p of def.params) params[p.name] = g.param(p.name, p.shape);
  const inputs: Record<string, Value> = {};
  for (const i of def.inputs) inputs[i.name] = g.input(i.name, i.shape, i.type ?? 'float');
  const { loss, outputs } = def.build(g, params, inputs, mode);
  return { g, params: def.params.map((p) => params[p.name]!), loss, outputs };
}

/** Derive the train (loss and gradients), eval (loss) and predict graphs of a probe definition. */
export function probeGraphs(def: ProbeDefinition): ProbeGraphs {
  const train = buildProbeGraph(def, 'train');
  const grads = train.g.grad(train.loss, train.params);
  const trainOut: Record<string, Value> = { loss: train.loss };
  def.params.forEach((p, k) => (trainOut[`grad.${p.name}`] = grads[k]!));
  const masks: MaskSpec[] = train.g.declared.filter((d) => d.kind === 'mask').map((d) => ({ name: d.name, shape: d.shape, p: d.p! }));
  const known = new Set(def.inputs.flatMap((i) => i.shape.filter((d): d is string => typeof d === 'string')));
  for (const m of masks) {
    const unknown = m.shape.filter((d) => typeof d === 'string' && !known.has(d));
    if (unknown.length) throw new Error(`probe '${def.name}': dropout mask '${m.name}' has dims [${m.shape.join(', ')}]; ${unknown.join(', ')} is not a dim of any probe input, so the trainer cannot size the mask (apply dropout to a value whose dims the inputs name)`);
  }
  const ev = buildProbeGraph(def, 'eval');
  return {
    name: def.name,
    params: def.params.map((p) => ({ name: p.name, shape: [...p.shape] })),
    masks,
    train: train.g.toOnnx(trainOut, `${def.name}_train`),
    eval: ev.g.toOnnx({ loss: ev.loss }, `${def.name}_loss`),
    predict: Object.keys(ev.outputs).length ? ev.g.toOnnx(ev.outputs, `${def.name}_predict`) : null,
  };
}

/** The loss, loss-and-gradient and predict graphs of a probe, run by onnxruntime. */
export async function compileProbe(def: ProbeDefinition, opts: CompileOptions = {}): Promise<CompiledProbe> {
  const graphs = probeGraphs(def);
  return new OnnxProbe(def, graphs, { ...opts }, await openProbeGraphs(graphs, opts));
}

/** The dims of a mask for these feeds (its symbolic dims read off the probe's inputs). */
export function maskDims(def: ProbeDefinition, mask: MaskSpec, feeds: Record<string, Feed>): number[] {
  return mask.shape.map((d) => {
    if (typeof d === 'number') return d;
    for (const i of def.inputs) {
      const axis = i.shape.indexOf(d);
      const f = feeds[i.name];
      if (axis >= 0 && f) return f.dims[axis]!;
    }
    throw new Error(`probe '${def.name}': no fed input has dim '${d}' for dropout mask '${mask.name}'`);
  });
}

function gaussian(rand: () => number): number {
  // Box–Muller (one value per pair of uniforms).
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Initial parameter values, in def.params order, from one seeded stream (mulberry32) drawn
 * parameter by parameter. Weight layout is [in, out] (x·W): 'xavier' is Glorot uniform
 * ±√(6/(in+out)); 'kaiming-uniform' is torch.nn.Linear's default weight init
 * (kaiming_uniform_(a=√5), i.e. uniform ±1/√in; torch/nn/modules/linear.py reset_parameters).
 * For a 1-D parameter, in = its length.
 */
export function initParams(def: ProbeDefinition, seed: number): Float32Array[] {
  const rand = mulberry32(seed);
  return def.params.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const fanIn = p.shape[0] ?? 1;
    const fanOut = p.shape.length > 1 ? p.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const init = p.init;
    const uniform = (lo: number, hi: number) => {
      for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
    };
    if (init === 'zeros') return out;
    if (init === 'ones') out.fill(1);
    else if (init === 'xavier') {
      const a = Math.sqrt(6 / (fanIn + fanOut));
      uniform(-a, a);
    } else if (init === 'kaiming-uniform') {
      const a = 1 / Math.sqrt(fanIn);
      uniform(-a, a);
    } else if ('uniform' in init) uniform(init.uniform[0], init.uniform[1]);
    else for (let i = 0; i < n; i++) out[i] = gaussian(rand) * init.normal;
    return out;
  });
}
