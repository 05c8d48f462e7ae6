/**
 * Types of the probe autodiff (src/probes/graph/): values of a graph under construction, the
 * closed op set a probe definition may use, and what is fed to a compiled graph.
 *
 * `Graph` is the interface a ProbeDefinition's build() receives; graph.ts implements it
 * (class AutodiffGraph) over src/model/onnx-graph.ts's GraphBuilder, with a gradient rule per op.
 */

/** A dimension: a number, or a string naming a symbolic (run-time) size. */
export type Dim = number | string;

/** 'float' is float32, or float64 when the graph is built with precision 'float64' (tests). */
export type ElemType = 'float' | 'int64' | 'bool';

export type Precision = 'float32' | 'float64';

/** One tensor of the graph. Shapes are tracked at build time (symbolic dims by name). */
export interface Value {
  readonly name: string;
  readonly shape: readonly Dim[];
  readonly type: ElemType;
}

/** A tensor fed to (or read from) a compiled graph: row-major data with its dimensions. */
export interface Feed {
  data: Float32Array | Float64Array | BigInt64Array | Uint8Array;
  dims: readonly number[];
}

/**
 * The closed op set. Every op has a gradient rule (graph.ts) and a float64 finite-difference
 * test (test/graph-ops.test.ts). Binary ops broadcast as numpy/ONNX do; their gradients are
 * summed back to each input's shape.
 */
export interface Graph {
  readonly precision: Precision;
  /** 'train' graphs apply dropout; 'eval' graphs pass values through. */
  readonly training: boolean;

  /** Batch data, fed per run. */
  input(name: string, shape: Dim[], type?: ElemType): Value;
  /** A trainable parameter, fed per run. */
  param(name: string, shape: number[]): Value;
  /** A float constant (the graph's precision); a scalar when shape is omitted and one value. */
  constant(values: ArrayLike<number>, shape?: number[]): Value;
  constantInt(values: ArrayLike<number>, shape?: number[]): Value;

  matmul(a: Value, b: Value): Value;
  add(a: Value, b: Value): Value;
  sub(a: Value, b: Value): Value;
  mul(a: Value, b: Value): Value;
  div(a: Value, b: Value): Value;
  neg(x: Value): Value;
  abs(x: Value): Value;
  sign(x: Value): Value;
  pow(x: Value, exponent: number): Value;
  sqrt(x: Value): Value;
  exp(x: Value): Value;
  log(x: Value): Value;
  relu(x: Value): Value;
  tanh(x: Value): Value;
  sigmoid(x: Value): Value;
  erf(x: Value): Value;
  softmax(x: Value, axis: number): Value;
  logSoftmax(x: Value, axis: number): Value;
  reduceSum(x: Value, axes: number[], keepdims?: boolean): Value;
  reduceMean(x: Value, axes: number[], keepdims?: boolean): Value;
  /** Σ x² over the axes in one pass (ONNX ReduceSumSquare). */
  reduceSumSquare(x: Value, axes: number[], keepdims?: boolean): Value;
  /** Target shape: numbers, symbolic dims already known to the graph, or one -1. */
  reshape(x: Value, shape: Dim[]): Value;
  transpose(x: Value, perm: number[]): Value;
  concat(xs: Value[], axis: number): Value;
  /** Static starts/ends (negative counts from the end), step 1. */
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value;
  unsqueeze(x: Value, axes: number[]): Value;
  /** Gradient by ScatterND with reduction 'add' (repeated indices accumulate). */
  gather(x: Value, indices: Value, axis?: number): Value;
  /**
   * Rows of x [rows, …] gathered by a 1-D int64 `index` when every row is read at exactly one
   * position, `inverse[row]` (so index[inverse[r]] = r), and any other position reads a row only as
   * padding whose gradient is zero (masked out of the loss). ∂x is then ḡ gathered by `inverse`:
   * one pass, where gather's general rule scatters ḡ into zeros. Padded batches of words use it.
   */
  gatherOnce(x: Value, index: Value, inverse: Value): Value;
  /**
   * x cut along `axis` into `count` consecutive parts whose lengths are fed at run time (`sizes`,
   * int64 [count], summing to the axis' length; ONNX Split). ∂x is the parts' ḡ concatenated.
   */
  split(x: Value, sizes: Value, count: number, axis?: number): Value[];
  where(cond: Value, a: Value, b: Value): Value;
  /** Over the last axis, as ONNX LayerNormalization (axis −1). */
  layerNorm(x: Value, gamma: Value, beta: Value, eps: number): Value;
  /**
   * Inverted dropout x·mask with the mask fed as input `maskName` (same shape as x, entries 0 or
   * 1/(1−p)), drawn by the trainer from its seed; identity in 'eval' graphs.
   */
  dropout(x: Value, p: number, maskName: string): Value;

  /** Reverse mode: d loss / d each of wrt (a scalar loss), as new graph values. */
  grad(loss: Value, wrt: Value[]): Value[];
}
