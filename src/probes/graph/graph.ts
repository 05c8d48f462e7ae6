/**
 * A small reverse-mode autodiff over ONNX graphs (issue 9): a probe states its forward
 * computation with the closed op set of types.ts; grad() appends the backward pass as more
 * ONNX nodes, op by op, by the rules below; toOnnx() writes the nodes a set of outputs needs
 * through src/model/onnx-graph.ts's GraphBuilder (opset 17), to be run by onnxruntime.
 *
 * Shapes are tracked at build time, numbers or symbolic names, so that a broadcasting op's
 * gradient is summed back over exactly the axes its input was broadcast along. Two different
 * symbolic names on one broadcast axis are taken to be equal (ONNX would fail at run time if not);
 * a symbolic dim is never taken to be 1. Wherever a gradient needs a run-time size (the zeros a
 * Gather gradient scatters into, a Reshape back, a Slice's padding), it reads it with Shape.
 *
 * Gradient rules (∂ = upstream gradient ḡ, y = the op's output):
 *   matmul  ∂a = ḡ·bᵀ, ∂b = aᵀ·ḡ (batch axes summed back); a·aᵀ: ∂a = (ḡ + ḡᵀ)·a
 *   add/sub ±ḡ      mul  ḡ·b, ḡ·a (x·x: 2ḡ·x)
 *   div     ḡ/b, −ḡ·y/b           neg −ḡ    abs ḡ·sign(x)    sign 0    pow ḡ·e·x^(e−1)
 *   sqrt    ḡ/(2y)    exp ḡ·y    log ḡ/x    relu ḡ·sign(y)   tanh ḡ·(1−y²)   sigmoid ḡ·y·(1−y)
 *   erf     ḡ·2/√π·exp(−x²)       softmax y·(ḡ − Σ ḡ·y)       logSoftmax ḡ − softmax(x)·Σ ḡ
 *   reduceSum  ḡ expanded         reduceMean ḡ expanded / count       reshape  ḡ reshaped back
 *   reduceSumSquare  2ḡ expanded ·x                 gatherOnce  ḡ gathered by the inverse index
 *   transpose  ḡ by the inverse permutation     concat  slices of ḡ     slice  ḡ zero-padded
 *   unsqueeze  squeeze ḡ          gather (axis 0)  ScatterND(zeros, indices, ḡ, reduction add)
 *   split      the parts' ḡ concatenated (zeros for a part without one)
 *   where      where(c, ḡ, 0), where(c, 0, ḡ)
 *   layerNorm  x̂ = (x−μ)/σ, ∂x̂ = ḡ·γ: ∂x = (∂x̂ − mean(∂x̂) − x̂·mean(∂x̂·x̂))/σ, ∂γ = Σ ḡ·x̂, ∂β = Σ ḡ
 *   dropout    ḡ·mask
 */
import onnxProto from 'onnx-proto';
import { GraphBuilder } from '../../model/onnx-graph.js';
import type { Dim, ElemType, Graph, Precision, Value } from './types.js';

const DT = onnxProto.onnx.TensorProto.DataType;

type Attrs = Record<string, number | number[] | string>;

/** A value with its producer's gradient rule (absent for inputs, params and constants). */
interface Val extends Value {
  readonly id: number;
  readonly inputs: readonly Val[];
  /** Gradients for each input (null: none, or not differentiable) given ḡ. */
  readonly backward?: (gy: Val) => (Val | null)[];
  /** Set on an Expand a gradient rule made: the smaller value it broadcasts. */
  broadcastOf?: Val;
  /** Set on a transpose that swaps the last two axes: its input. */
  swapOf?: Val;
  /** Set on a split (no node of its own, its input's name): its parts and the axis; its ḡ is their ḡ concatenated. */
  parts?: { values: Val[]; axis: number };
  /** Set on a part of a split: which one. */
  partIndex?: number;
}

interface NodeRec {
  opType: string;
  inputs: string[];
  output: string;
  /** The outputs after the first, for an op with several (Split). */
  more?: string[];
  attrs: Attrs;
}

const outputsOf = (n: NodeRec): string[] => (n.more ? [n.output, ...n.more] : [n.output]);

interface Initializer {
  name: string;
  dataType: number;
  dims: number[];
  raw: Uint8Array;
}

/** A declared graph input (data, parameter or dropout mask). */
export interface GraphInput {
  name: string;
  shape: readonly Dim[];
  type: ElemType;
  kind: 'input' | 'param' | 'mask';
  /** Dropout masks: the drop probability. */
  p?: number;
}

function bytesOf(a: Float32Array | Float64Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

function shapeText(s: readonly Dim[]): string {
  return `[${s.join(', ')}]`;
}

/** numpy/ONNX broadcasting of two shapes. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i - (n - a.length) >= 0 ? a[i - (n - a.length)]! : 1;
    const db = i - (n - b.length) >= 0 ? b[i - (n - b.length)]! : 1;
    if (sameDim(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else if (typeof da === 'number' && typeof db === 'number') throw new Error(`shapes ${shapeText(a)} and ${shapeText(b)} do not broadcast`);
    else out.push(typeof da === 'number' ? da : typeof db === 'number' ? db : da);
  }
  return out;
}

export class AutodiffGraph implements Graph {
  readonly precision: Precision;
  readonly training: boolean;
  private readonly vals: Val[] = [];
  private readonly nodes: NodeRec[] = [];
  private readonly inits = new Map<string, Initializer>();
  private readonly constKeys = new Map<string, string>();
  readonly declared: GraphInput[] = [];
  /** A value and axis to read each symbolic dim from at run time. */
  private readonly symbols = new Map<string, { v: Val; axis: number }>();
  private counter = 0;

  constructor(opts: { precision?: Precision; training?: boolean } = {}) {
    this.precision = opts.precision ?? 'float32';
    this.training = opts.training ?? false;
  }

  private get floatType(): number {
    return this.precision === 'float64' ? DT.DOUBLE : DT.FLOAT;
  }

  private fresh(hint: string): string {
    // A '/' keeps generated names apart from any input a probe declares.
    return `ad/${hint}/${this.counter++}`;
  }

  private elem(t: ElemType): number {
    return t === 'float' ? this.floatType : t === 'int64' ? DT.INT64 : DT.BOOL;
  }

  private make(name: string, shape: readonly Dim[], type: ElemType, inputs: Val[] = [], backward?: Val['backward']): Val {
    const v: Val = { id: this.vals.length, name, shape: [...shape], type, inputs, backward };
    this.vals.push(v);
    shape.forEach((d, axis) => {
      if (typeof d === 'string' && !this.symbols.has(d)) this.symbols.set(d, { v, axis });
    });
    return v;
  }

  /** Append one ONNX node; returns its output name. */
  private raw(opType: string, inputs: string[], attrs: Attrs = {}): string {
    const output = this.fresh(opType.toLowerCase());
    this.nodes.push({ opType, inputs, output, attrs });
    return output;
  }

  /** A node producing a tracked value. */
  private node(opType: string, inputs: Val[], attrs: Attrs, shape: readonly Dim[], type: ElemType, backward?: Val['backward'], extraInputs: string[] = []): Val {
    const out = this.raw(opType, [...inputs.map((v) => v.name), ...extraInputs], attrs);
    return this.make(out, shape, type, inputs, backward);
  }

  private asVal(v: Value): Val {
    const val = v as Val;
    if (this.vals[val.id] !== val) throw new Error(`value '${v.name}' belongs to another graph`);
    return val;
  }

  private float(v: Value, op: string): Val {
    const val = this.asVal(v);
    if (val.type !== 'float') throw new Error(`${op}: expected a float value, found ${val.type} '${val.name}'`);
    return val;
  }

  private declare(name: string, shape: Dim[], type: ElemType, kind: GraphInput['kind'], p?: number): Val {
    if (this.declared.some((d) => d.name === name)) throw new Error(`graph input '${name}' declared twice`);
    this.declared.push({ name, shape, type, kind, p });
    return this.make(name, shape, type);
  }

  input(name: string, shape: Dim[], type: ElemType = 'float'): Value {
    return this.declare(name, shape, type, 'input');
  }

  param(name: string, shape: number[]): Value {
    return this.declare(name, shape, 'float', 'param');
  }

  private initializer(key: string, make: () => Initializer): string {
    let name = this.constKeys.get(key);
    if (!name) {
      name = this.fresh('const');
      this.inits.set(name, { ...make(), name });
      this.constKeys.set(key, name);
    }
    return name;
  }

  /** Name of a float constant tensor (deduplicated). */
  private constName(values: ArrayLike<number>, dims: number[]): string {
    const arr = Array.from(values);
    return this.initializer(`f:${dims.join(',')}:${arr.join(',')}`, () => ({
      name: '',
      dataType: this.floatType,
      dims,
      raw: bytesOf(this.precision === 'float64' ? Float64Array.from(arr) : Float32Array.from(arr)),
    }));
  }

  /** Name of an int64 constant tensor (deduplicated); a 1-D vector by default. */
  private intName(values: ArrayLike<number>, dims: number[] = [values.length]): string {
    const arr = Array.from(values);
    return this.initializer(`i:${dims.join(',')}:${arr.join(',')}`, () => ({ name: '', dataType: DT.INT64, dims, raw: bytesOf(BigInt64Array.from(arr.map((x) => BigInt(x)))) }));
  }

  constant(values: ArrayLike<number>, shape?: number[]): Value {
    const dims = shape ?? (values.length === 1 ? [] : [values.length]);
    if (dims.reduce((a, b) => a * b, 1) !== values.length) throw new Error(`constant: ${values.length} values for shape ${shapeText(dims)}`);
    return this.make(this.constName(values, dims), dims, 'float');
  }

  constantInt(values: ArrayLike<number>, shape?: number[]): Value {
    const dims = shape ?? (values.length === 1 ? [] : [values.length]);
    if (dims.reduce((a, b) => a * b, 1) !== values.length) throw new Error(`constantInt: ${values.length} values for shape ${shapeText(dims)}`);
    return this.make(this.intName(values, dims), dims, 'int64');
  }

  private scalar(x: number): Val {
    return this.constant([x], []) as Val;
  }

  // ---- run-time shape helpers (not differentiated) ----

  /** int64 [1]: dim `axis` of v at run time. */
  private dimOf(v: Val, axis: number): string {
    const d = v.shape[axis]!;
    if (typeof d === 'number') return this.intName([d]);
    return this.raw('Shape', [v.name], { start: axis, end: axis + 1 });
  }

  /** int64 [1] of a symbolic or numeric dim. */
  private dimTensor(d: Dim): string {
    if (typeof d === 'number') return this.intName([d]);
    const src = this.symbols.get(d);
    if (!src) throw new Error(`symbolic dim '${d}' is not the dim of any value in the graph`);
    return this.dimOf(src.v, src.axis);
  }

  /** int64 [rank]: a whole shape (static where known). */
  private shapeTensor(shape: readonly Dim[]): string {
    if (shape.every((d) => typeof d === 'number')) return this.intName(shape as number[]);
    return this.raw('Concat', shape.map((d) => this.dimTensor(d)), { axis: 0 });
  }

  /** v broadcast to `like`'s shape. */
  private expandLike(v: Val, like: Val): Val {
    const e = this.make(this.raw('Expand', [v.name, this.shapeTensor(like.shape)]), like.shape, v.type);
    e.broadcastOf = v;
    return e;
  }

  /** An expanded operand replaced by what it expands, where the op's broadcasting gives the same result. */
  private unexpanded(v: Val, other: Val, shape: readonly Dim[]): Val {
    const src = v.broadcastOf;
    if (!src) return v;
    const b = broadcastShapes(src.shape, other.shape);
    return b.length === shape.length && b.every((d, i) => d === shape[i]) ? src : v;
  }

  private zerosLike(like: Val): Val {
    return this.expandLike(this.scalar(0), like);
  }

  /** g summed over the axes along which a value of `shape` was broadcast to g's shape. */
  private reduceTo(g: Val, shape: readonly Dim[]): Val {
    const lead = g.shape.length - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.shape.length; i++) {
      if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    }
    let r = g;
    if (axes.length) r = this.reduceSum(r, axes, true) as Val;
    if (lead > 0) r = this.make(this.raw('Squeeze', [r.name, this.intName(axes.slice(0, lead))]), shape, r.type);
    return r;
  }

  /** Swap the last two axes. */
  private swapLast(v: Val): Val {
    const r = v.shape.length;
    return this.transpose(v, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]) as Val;
  }

  matmul(a: Value, b: Value): Value {
    const av = this.float(a, 'MatMul');
    const bv = this.float(b, 'MatMul');
    if (av.shape.length < 2 || bv.shape.length < 2) throw new Error(`matmul: both operands need rank ≥ 2, found ${shapeText(av.shape)} · ${shapeText(bv.shape)}`);
    const [m, k1] = av.shape.slice(-2);
    const [k2, n] = bv.shape.slice(-2);
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) throw new Error(`matmul: inner dims differ, ${shapeText(av.shape)} · ${shapeText(bv.shape)}`);
    const shape = [...broadcastShapes(av.shape.slice(0, -2), bv.shape.slice(0, -2)), m!, n!];
    if (bv.swapOf === av) {
      // A Gram matrix a·aᵀ: ∂a = (ḡ + ḡᵀ)·a, one product instead of two and a transpose back.
      return this.node('MatMul', [av, bv], {}, shape, 'float', (gy) => [this.matmul(this.add(gy, this.swapLast(gy)), av) as Val, null]);
    }
    return this.node('MatMul', [av, bv], {}, shape, 'float', (gy) => {
      const ga = this.reduceTo(this.matmul(gy, this.swapLast(bv)) as Val, av.shape);
      let gb: Val;
      if (bv.shape.length === 2 && av.shape.length > 2) {
        // A batch of rows times one matrix: ∂b = Σ over all rows, as one 2-D product.
        const rows = this.reshape(av, [-1, k1!]);
        gb = this.matmul(this.transpose(rows, [1, 0]), this.reshape(gy, [-1, n!])) as Val;
      } else gb = this.reduceTo(this.matmul(this.swapLast(av), gy) as Val, bv.shape);
      return [ga, gb];
    });
  }

  // ---- element-wise ----

  private binary(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Value, b: Value, rule: (gy: Val, a: Val, b: Val, y: Val) => [Val | null, Val | null]): Val {
    const a0 = this.float(a, op);
    const b0 = this.float(b, op);
    const shape = broadcastShapes(a0.shape, b0.shape);
    // ḡ of a reduction is expanded to the input's shape; an element-wise op broadcasts it for free.
    const av = this.unexpanded(a0, b0, shape);
    const bv = this.unexpanded(b0, av, shape);
    const y: Val = this.node(op, [av, bv], {}, shape, 'float', (gy) => {
      const [ga, gb] = rule(gy, av, bv, y);
      return [ga && this.reduceTo(ga, av.shape), gb && this.reduceTo(gb, bv.shape)];
    });
    return y;
  }

  add(a: Value, b: Value): Value {
    return this.binary('Add', a, b, (gy) => [gy, gy]);
  }

  sub(a: Value, b: Value): Value {
    return this.binary('Sub', a, b, (gy) => [gy, this.neg(gy) as Val]);
  }

  mul(a: Value, b: Value): Value {
    return this.binary('Mul', a, b, (gy, a, b) => {
      // x·x: one product, 2ḡ·x (ḡ, often broadcast, scaled while small).
      if (a === b) return [this.mul(this.mul(gy, this.scalar(2)), a) as Val, null];
      return [this.mul(gy, b) as Val, this.mul(gy, a) as Val];
    });
  }

  div(a: Value, b: Value): Value {
    return this.binary('Div', a, b, (gy, _a, b, y) => [this.div(gy, b) as Val, this.neg(this.div(this.mul(gy, y), b)) as Val]);
  }

  private unary(op: string, x: Value, rule: ((gy: Val, x: Val, y: Val) => Val | null) | null, attrs: Attrs = {}): Val {
    const xv = this.float(x, op);
    const y: Val = this.node(op, [xv], attrs, xv.shape, 'float', rule ? (gy) => [rule(gy, xv, y)] : undefined);
    return y;
  }

  neg(x: Value): Value {
    return this.unary('Neg', x, (gy) => this.neg(gy) as Val);
  }

  abs(x: Value): Value {
    return this.unary('Abs', x, (gy, x) => this.mul(gy, this.sign(x)) as Val);
  }

  sign(x: Value): Value {
    // Zero almost everywhere (undefined at 0): no gradient flows.
    return this.unary('Sign', x, () => null);
  }

  pow(x: Value, exponent: number): Value {
    const xv = this.float(x, 'Pow');
    const y: Val = this.node('Pow', [xv], {}, xv.shape, 'float', (gy) => {
      const d = exponent === 2 ? this.mul(xv, this.scalar(2)) : this.mul(this.pow(xv, exponent - 1), this.scalar(exponent));
      return [this.mul(gy, d) as Val];
    }, [this.constName([exponent], [])]);
    return y;
  }

  sqrt(x: Value): Value {
    return this.unary('Sqrt', x, (gy, _x, y) => this.div(gy, this.mul(y, this.scalar(2))) as Val);
  }

  exp(x: Value): Value {
    return this.unary('Exp', x, (gy, _x, y) => this.mul(gy, y) as Val);
  }

  log(x: Value): Value {
    return this.unary('Log', x, (gy, x) => this.div(gy, x) as Val);
  }

  relu(x: Value): Value {
    return this.unary('Relu', x, (gy, _x, y) => this.mul(gy, this.sign(y)) as Val);
  }

  tanh(x: Value): Value {
    return this.unary('Tanh', x, (gy, _x, y) => this.mul(gy, this.sub(this.scalar(1), this.mul(y, y))) as Val);
  }

  sigmoid(x: Value): Value {
    return this.unary('Sigmoid', x, (gy, _x, y) => this.mul(gy, this.mul(y, this.sub(this.scalar(1), y))) as Val);
  }

  erf(x: Value): Value {
    return this.unary('Erf', x, (gy, x) => this.mul(gy, this.mul(this.exp(this.neg(this.mul(x, x))), this.scalar(2 / Math.sqrt(Math.PI)))) as Val);
  }

  softmax(x: Value, axis: number): Value {
    const a = normAxis(axis, x.shape.length);
    return this.unary('Softmax', x, (gy, _x, y) => this.mul(y, this.sub(gy, this.reduceSum(this.mul(gy, y), [a], true))) as Val, { axis: a });
  }

  logSoftmax(x: Value, axis: number): Value {
    const a = normAxis(axis, x.shape.length);
    return this.unary('LogSoftmax', x, (gy, _x, y) => this.sub(gy, this.mul(this.exp(y), this.reduceSum(gy, [a], true))) as Val, { axis: a });
  }

  // ---- reductions and layout ----

  private reduced(x: Val, axes: number[], keepdims: boolean): { axes: number[]; shape: Dim[] } {
    const ax = [...new Set(axes.map((a) => normAxis(a, x.shape.length)))].sort((p, q) => p - q);
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!ax.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    return { axes: ax, shape };
  }

  /** ḡ of a reduction back at x's shape. */
  private unreduce(gy: Val, x: Val, axes: number[], keepdims: boolean): Val {
    const g = keepdims ? gy : this.make(this.raw('Unsqueeze', [gy.name, this.intName(axes)]), this.reduced(x, axes, true).shape, 'float');
    return this.expandLike(g, x);
  }

  reduceSum(x: Value, axes: number[], keepdims = false): Value {
    const xv = this.float(x, 'ReduceSum');
    const r = this.reduced(xv, axes, keepdims);
    return this.node('ReduceSum', [xv], { keepdims: keepdims ? 1 : 0 }, r.shape, 'float', (gy) => [this.unreduce(gy, xv, r.axes, keepdims)], [this.intName(r.axes)]);
  }

  /** Σ x² over `axes` (ONNX ReduceSumSquare): one pass and no x⊙x temporary; ∂x = 2ḡ·x, one pass. */
  reduceSumSquare(x: Value, axes: number[], keepdims = false): Value {
    const xv = this.float(x, 'ReduceSumSquare');
    const r = this.reduced(xv, axes, keepdims);
    return this.node('ReduceSumSquare', [xv], { axes: r.axes, keepdims: keepdims ? 1 : 0 }, r.shape, 'float', (gy) => [this.mul(this.unreduce(this.mul(gy, this.scalar(2)) as Val, xv, r.axes, keepdims), xv) as Val]);
  }

  reduceMean(x: Value, axes: number[], keepdims = false): Value {
    const xv = this.float(x, 'ReduceMean');
    const r = this.reduced(xv, axes, keepdims);
    return this.node('ReduceMean', [xv], { axes: r.axes, keepdims: keepdims ? 1 : 0 }, r.shape, 'float', (gy) => {
      const dims = r.axes.map((a) => xv.shape[a]!);
      let count: Val;
      if (dims.every((d) => typeof d === 'number')) count = this.scalar((dims as number[]).reduce((p, q) => p * q, 1));
      else {
        const prod = this.raw('ReduceProd', [this.raw('Concat', dims.map((d) => this.dimTensor(d)), { axis: 0 })], { keepdims: 0 });
        count = this.make(this.raw('Cast', [prod], { to: this.floatType }), [], 'float');
      }
      return [this.div(this.unreduce(gy, xv, r.axes, keepdims), count) as Val];
    });
  }

  reshape(x: Value, shape: Dim[]): Value {
    const xv = this.asVal(x);
    const minus = shape.filter((d) => d === -1).length;
    if (minus > 1) throw new Error('reshape: at most one -1');
    let out: Dim[] = shape;
    if (minus === 1) {
      const known = shape.filter((d) => d !== -1);
      const total = xv.shape.every((d) => typeof d === 'number') ? (xv.shape as number[]).reduce((p, q) => p * q, 1) : null;
      const rest = known.every((d) => typeof d === 'number') ? (known as number[]).reduce((p, q) => p * q, 1) : null;
      const inferred: Dim = total !== null && rest !== null ? total / rest : this.fresh('reshape_dim');
      out = shape.map((d) => (d === -1 ? inferred : d));
    }
    const target = minus === 1 ? this.raw('Concat', shape.map((d) => (d === -1 ? this.intName([-1]) : this.dimTensor(d))), { axis: 0 }) : this.shapeTensor(shape);
    return this.node('Reshape', [xv], {}, out, xv.type, (gy) => [this.make(this.raw('Reshape', [gy.name, this.raw('Shape', [xv.name])]), xv.shape, 'float')], [target]);
  }

  transpose(x: Value, perm: number[]): Value {
    const xv = this.asVal(x);
    if (perm.length !== xv.shape.length || [...perm].sort().some((p, i) => p !== i)) throw new Error(`transpose: bad permutation [${perm}] for rank ${xv.shape.length}`);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    const y = this.node('Transpose', [xv], { perm }, perm.map((p) => xv.shape[p]!), xv.type, (gy) => [this.transpose(gy, inverse) as Val]);
    const r = perm.length;
    if (r >= 2 && perm.every((p, i) => (i < r - 2 ? p === i : p === (i === r - 1 ? r - 2 : r - 1)))) y.swapOf = xv;
    return y;
  }

  concat(xs: Value[], axis: number): Value {
    if (xs.length === 0) throw new Error('concat: no inputs');
    const vs = xs.map((x) => this.asVal(x));
    const rank = vs[0]!.shape.length;
    const a = normAxis(axis, rank);
    const along = vs.map((v) => v.shape[a]!);
    const shape = [...vs[0]!.shape];
    shape[a] = along.every((d) => typeof d === 'number') ? (along as number[]).reduce((p, q) => p + q, 0) : this.fresh('concat_dim');
    return this.node('Concat', vs, { axis: a }, shape, vs[0]!.type, (gy) => {
      let start = this.intName([0]);
      let staticStart: number | null = 0;
      return vs.map((v) => {
        const d = v.shape[a]!;
        let end: string;
        let staticEnd: number | null = null;
        if (staticStart !== null && typeof d === 'number') {
          staticEnd = staticStart + d;
          end = this.intName([staticEnd]);
        } else end = this.raw('Add', [start, this.dimOf(v, a)]);
        const piece = this.make(this.raw('Slice', [gy.name, start, end, this.intName([a])]), v.shape, 'float');
        start = end;
        staticStart = staticEnd;
        return v.type === 'float' ? piece : null;
      });
    });
  }

  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    const xv = this.asVal(x);
    if (starts.length !== axes.length || ends.length !== axes.length) throw new Error('slice: starts, ends and axes differ in length');
    const ax = axes.map((a) => normAxis(a, xv.shape.length));
    const shape = [...xv.shape];
    const clamp = (s: number, d: number) => Math.min(Math.max(s < 0 ? s + d : s, 0), d);
    ax.forEach((a, k) => {
      const d = xv.shape[a]!;
      shape[a] = typeof d === 'number' ? Math.max(0, clamp(ends[k]!, d) - clamp(starts[k]!, d)) : this.fresh('slice_dim');
    });
    return this.node('Slice', [xv], {}, shape, xv.type, (gy) => {
      // ḡ zero-padded back: before = clamped start, after = dim − clamped end, per sliced axis.
      const rank = xv.shape.length;
      const before: string[] = Array.from({ length: rank }, () => this.intName([0]));
      const after: string[] = before.slice();
      ax.forEach((a, k) => {
        const d = xv.shape[a]!;
        if (typeof d === 'number') {
          before[a] = this.intName([clamp(starts[k]!, d)]);
          after[a] = this.intName([d - Math.max(clamp(ends[k]!, d), clamp(starts[k]!, d))]);
        } else {
          const dim = this.dimOf(xv, a);
          const bound = (s: number) => {
            const shifted = s < 0 ? this.raw('Add', [dim, this.intName([s])]) : this.intName([s]);
            return this.raw('Min', [this.raw('Max', [shifted, this.intName([0])]), dim]);
          };
          const s = bound(starts[k]!);
          before[a] = s;
          after[a] = this.raw('Sub', [dim, this.raw('Max', [bound(ends[k]!), s])]);
        }
      });
      const pads = this.raw('Concat', [...before, ...after], { axis: 0 });
      return [this.make(this.raw('Pad', [gy.name, pads]), xv.shape, 'float')];
    }, [this.intName(starts), this.intName(ends), this.intName(ax)]);
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const xv = this.asVal(x);
    const rank = xv.shape.length + axes.length;
    const ax = axes.map((a) => normAxis(a, rank)).sort((p, q) => p - q);
    const shape: Dim[] = [];
    let k = 0;
    for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : xv.shape[k++]!);
    return this.node('Unsqueeze', [xv], {}, shape, xv.type, (gy) => [this.make(this.raw('Squeeze', [gy.name, this.intName(ax)]), xv.shape, 'float')], [this.intName(ax)]);
  }

  gather(x: Value, indices: Value, axis = 0): Value {
    const xv = this.asVal(x);
    const iv = this.asVal(indices);
    if (iv.type !== 'int64') throw new Error(`gather: indices must be int64, found ${iv.type} '${iv.name}'`);
    const a = normAxis(axis, xv.shape.length);
    if (a !== 0) {
      // Gather along `a` = move `a` to the front, gather along 0, move the index axes back.
      const front = [a, ...xv.shape.map((_, i) => i).filter((i) => i !== a)];
      const g0 = this.gather(this.transpose(xv, front), iv, 0);
      const q = iv.shape.length;
      const perm = [...Array.from({ length: a }, (_, i) => q + i), ...Array.from({ length: q }, (_, i) => i), ...Array.from({ length: xv.shape.length - 1 - a }, (_, i) => q + a + i)];
      return this.transpose(g0, perm);
    }
    const shape = [...iv.shape, ...xv.shape.slice(1)];
    return this.node('Gather', [xv, iv], { axis: 0 }, shape, xv.type, (gy) => {
      const idx = this.raw('Unsqueeze', [iv.name, this.intName([-1])]);
      const scattered = this.raw('ScatterND', [this.zerosLike(xv).name, idx, gy.name], { reduction: 'add' });
      return [this.make(scattered, xv.shape, 'float'), null];
    });
  }

  gatherOnce(x: Value, index: Value, inverse: Value): Value {
    const xv = this.asVal(x);
    const iv = this.asVal(index);
    const inv = this.asVal(inverse);
    if (iv.type !== 'int64' || inv.type !== 'int64' || iv.shape.length !== 1 || inv.shape.length !== 1) {
      throw new Error(`gatherOnce: index and inverse must be 1-D int64, found ${iv.type} ${shapeText(iv.shape)} and ${inv.type} ${shapeText(inv.shape)}`);
    }
    if (!sameDim(inv.shape[0]!, xv.shape[0]!) && typeof inv.shape[0] === 'number' && typeof xv.shape[0] === 'number') {
      throw new Error(`gatherOnce: inverse has ${inv.shape[0]} entries for ${xv.shape[0]} rows`);
    }
    const shape = [iv.shape[0]!, ...xv.shape.slice(1)];
    return this.node('Gather', [xv, iv], { axis: 0 }, shape, xv.type, (gy) => [this.make(this.raw('Gather', [gy.name, inv.name], { axis: 0 }), xv.shape, 'float'), null]);
  }

  split(x: Value, sizes: Value, count: number, axis = 0): Value[] {
    const xv = this.asVal(x);
    const sv = this.asVal(sizes);
    if (sv.type !== 'int64' || sv.shape.length !== 1) throw new Error(`split: sizes must be 1-D int64, found ${sv.type} ${shapeText(sv.shape)}`);
    if (!Number.isInteger(count) || count < 1) throw new Error(`split: count must be a positive integer, found ${count}`);
    const a = normAxis(axis, xv.shape.length);
    const names = Array.from({ length: count }, () => this.fresh('split'));
    this.nodes.push({ opType: 'Split', inputs: [xv.name, sv.name], output: names[0]!, more: names.slice(1), attrs: { axis: a } });
    // The split itself: an alias of x (no node) that grad() hands the parts' ḡ concatenated.
    const op = this.make(xv.name, xv.shape, xv.type, [xv], (gy) => [gy]);
    const values = names.map((name, k) => {
      const shape = [...xv.shape];
      shape[a] = this.fresh('split_dim');
      const part = this.make(name, shape, xv.type, [op], (gy) => [gy]);
      part.partIndex = k;
      return part;
    });
    op.parts = { values, axis: a };
    return values;
  }

  where(cond: Value, a: Value, b: Value): Value {
    const cv = this.asVal(cond);
    if (cv.type !== 'bool') throw new Error(`where: condition must be bool, found ${cv.type} '${cv.name}'`);
    const av = this.float(a, 'Where');
    const bv = this.float(b, 'Where');
    const shape = broadcastShapes(broadcastShapes(cv.shape, av.shape), bv.shape);
    return this.node('Where', [cv, av, bv], {}, shape, 'float', (gy) => {
      const zero = this.scalar(0);
      const ga = this.make(this.raw('Where', [cv.name, gy.name, zero.name]), gy.shape, 'float');
      const gb = this.make(this.raw('Where', [cv.name, zero.name, gy.name]), gy.shape, 'float');
      return [null, this.reduceTo(ga, av.shape), this.reduceTo(gb, bv.shape)];
    });
  }

  layerNorm(x: Value, gamma: Value, beta: Value, eps: number): Value {
    const xv = this.float(x, 'LayerNormalization');
    const gv = this.float(gamma, 'LayerNormalization');
    const bv = this.float(beta, 'LayerNormalization');
    const last = xv.shape.length - 1;
    if (gv.shape.length !== 1 || bv.shape.length !== 1) throw new Error('layerNorm: gamma and beta must be 1-D over the last axis');
    return this.node('LayerNormalization', [xv, gv, bv], { axis: -1, epsilon: eps }, xv.shape, 'float', (gy) => {
      const mean = this.reduceMean(xv, [last], true);
      const centred = this.sub(xv, mean);
      const inv = this.div(this.scalar(1), this.sqrt(this.add(this.reduceMean(this.mul(centred, centred), [last], true), this.scalar(eps))));
      const xhat = this.mul(centred, inv);
      const dxhat = this.mul(gy, gv);
      const dx = this.mul(this.sub(this.sub(dxhat, this.reduceMean(dxhat, [last], true)), this.mul(xhat, this.reduceMean(this.mul(dxhat, xhat), [last], true))), inv);
      return [dx as Val, this.reduceTo(this.mul(gy, xhat) as Val, gv.shape), this.reduceTo(gy, bv.shape)];
    });
  }

  dropout(x: Value, p: number, maskName: string): Value {
    if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
    if (!this.training || p === 0) return x;
    const xv = this.float(x, 'Dropout');
    const mask = this.declare(maskName, [...xv.shape], 'float', 'mask', p);
    return this.mul(xv, mask);
  }

  // ---- reverse mode ----

  grad(loss: Value, wrt: Value[]): Value[] {
    const lv = this.float(loss, 'grad');
    if (lv.shape.some((d) => d !== 1)) throw new Error(`grad: the loss must be a scalar, found shape ${shapeText(lv.shape)}`);
    const targets = wrt.map((w) => this.asVal(w));
    // Values that depend on a target (in creation order, which is topological).
    const needs = new Set<number>(targets.map((t) => t.id));
    const upto = lv.id;
    for (let i = 0; i <= upto; i++) {
      const v = this.vals[i]!;
      if (v.inputs.some((u) => needs.has(u.id))) needs.add(i);
    }
    const grads = new Map<number, Val>();
    // A split's ḡ, part by part (each part's own accumulated ḡ), concatenated when the split is reached.
    const partGrads = new Map<number, (Val | undefined)[]>();
    grads.set(lv.id, this.expandLike(this.scalar(1), lv));
    for (let i = upto; i >= 0; i--) {
      const v = this.vals[i]!;
      let gy = grads.get(i);
      const got = partGrads.get(i);
      if (v.parts && got) gy = this.concat(v.parts.values.map((p, k) => got[k] ?? this.zerosLike(p)), v.parts.axis) as Val;
      if (!gy || !v.backward || !needs.has(i)) continue;
      const gs = v.backward(gy);
      v.inputs.forEach((u, k) => {
        const g = gs[k];
        if (!g || !needs.has(u.id)) return;
        if (u.parts) {
          const list = partGrads.get(u.id) ?? [];
          list[v.partIndex!] = g;
          partGrads.set(u.id, list);
          return;
        }
        const prev = grads.get(u.id);
        grads.set(u.id, prev ? (this.add(prev, g) as Val) : g);
      });
    }
    return targets.map((t) => grads.get(t.id) ?? this.zerosLike(t));
  }

  // ---- emission ----

  /** The ONNX model computing `outputs` (only the nodes and inputs they need). */
  toOnnx(outputs: Record<string, Value>, name: string): Uint8Array {
    const b = new GraphBuilder();
    const final: NodeRec[] = [];
    const needed = new Set<string>();
    for (const [key, v] of Object.entries(outputs)) {
      if (this.declared.some((d) => d.name === key)) throw new Error(`graph output '${key}' has the name of a graph input; name it otherwise`);
      final.push({ opType: 'Identity', inputs: [this.asVal(v).name], output: key, attrs: {} });
      needed.add(v.name);
    }
    const kept: NodeRec[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!outputsOf(n).some((o) => needed.has(o))) continue;
      kept.push(n);
      for (const inp of n.inputs) needed.add(inp);
    }
    kept.reverse();
    for (const d of this.declared) if (needed.has(d.name)) b.input(d.name, this.elem(d.type), [...d.shape]);
    for (const init of this.inits.values()) {
      if (needed.has(init.name)) b.initializers.push({ name: init.name, dataType: init.dataType, dims: init.dims, rawData: init.raw });
    }
    for (const n of [...kept, ...final]) b.op(n.opType, n.inputs, n.attrs, outputsOf(n));
    for (const [key, v] of Object.entries(outputs)) b.output(key, this.elem(v.type), [...v.shape]);
    return b.model(name, `${name}: built by bert-probe's probe autodiff`);
  }

  /** Declared inputs a set of outputs needs (for callers that must know what to feed). */
  inputsFor(outputs: Record<string, Value>): GraphInput[] {
    const needed = new Set<string>(Object.values(outputs).map((v) => v.name));
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (outputsOf(n).some((o) => needed.has(o))) for (const inp of n.inputs) needed.add(inp);
    }
    return this.declared.filter((d) => needed.has(d.name));
  }
}
