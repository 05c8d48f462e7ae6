/**
 * A probe written once: its parameters, inputs and a build() that states its loss and outputs
 * with the ops of src/probes/graph. compileProbe derives the loss, loss-and-gradient and predict
 * graphs from it and runs them with onnxruntime-node's public API.
 */
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

export interface CompiledProbe {
  readonly definition: ProbeDefinition;
  /** Dropout masks of the train graph; lossAndGrad needs them among its feeds. */
  readonly masks: readonly MaskSpec[];
  lossAndGrad(params: Float32Array[], feeds: Record<string, Feed>): Promise<{ loss: number; grads: Float32Array[] }>;
  loss(params: Float32Array[], feeds: Record<string, Feed>): Promise<number>;
  predict(params: Float32Array[], feeds: Record<string, Feed>): Promise<Record<string, { data: Float32Array; dims: number[] }>>;
  dispose(): Promise<void>;
}

export interface CompileOptions {
  device?: 'cpu' | 'cuda';
  /** Threads for onnxruntime's intra-op pool (default: the machine's parallelism). */
  threads?: number;
}
