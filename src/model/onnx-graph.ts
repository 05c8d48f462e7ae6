import { attnName, layerName } from '../util/names.js';
import onnxProto from 'onnx-proto';
import { InputError } from '../util/errors.js';
import { pruneHeadWeights, type KeepHeads } from './prune-heads.js';
import type { BertConfig, Precision, WeightMap } from './types.js';

/**
 * BERT as an ONNX graph, built in-process from a WeightMap and serialized with onnx-proto's
 * generated protobuf classes (the ONNX project's onnx.proto). ONNX opset 17 (LayerNormalization
 * is one op there; ONNX Operators.md) plus onnxruntime's contrib ops (com.microsoft,
 * ContribOperators.md) where they are faster: BiasGelu/Gelu (exact erf GELU), and in the
 * hidden-states-only graph MultiHeadAttention. Dynamic batch and sequence length. The same
 * parts and numerics as bert-tfjs.ts (HF modeling_bert.py); fp32 equals the float64 reference
 * fixtures to 1e-4 (test/engines.test.ts).
 *
 * Encoder graph:
 *   inputs   input_ids, attention_mask, token_type_ids: int64 [batch, seq]
 *            head_mask: float [L, heads] (multiplies attention probabilities, as HF head_mask)
 *   outputs  layer.0 … layer.L: float [batch, seq, H] (0 = embeddings; the one naming scheme, DESIGN.md)
 *            attn.1 … attn.L: float [batch, heads, seq, seq] (after head mask; layers 1-based)
 * Precision (`--precision`, issue 14): `fp32` is the above. `int8` replaces each of the six
 * linear layers per encoder layer (Q, K, V, attention output, intermediate, output) by
 * onnxruntime's DynamicQuantizeMatMul (com.microsoft contrib op): weights quantised once here,
 * symmetric int8 per output column (scale = max|w|/127, zero point 0); activations quantised
 * per tensor to uint8 at run time by the op itself (ORT's "dynamic quantisation", as its
 * quantize_dynamic tool writes it). On AVX-512 VNNI / AMX CPUs MLAS runs these u8·s8 products
 * on the int8 units. Embeddings, LayerNorm, softmax, Q·Kᵀ and P·V stay fp32; so does the MLM head.
 * Hidden-states-only graph (`attentionOutputs: false`): the same without head_mask and attn.N;
 * each layer's attention core is one MultiHeadAttention op (onnx-engine.ts uses it where faster).
 * MLM head graph (separate, since [batch, seq, vocab] is large and rarely wanted):
 *   input    hidden: float [batch, seq, H] (the last hidden state)
 *   output   mlm_logits: float [batch, seq, vocab]
 */
const { onnx } = onnxProto;

export const ONNX_OPSET = 17;
/** Bump when the graph's structure changes, so cached graphs are rebuilt. */
export const GRAPH_VERSION = 3; // 2: outputs named layer.N / attn.N (issue 9 item 3); 3: BiasGelu/Gelu ops, hidden-states graph (issue 14)

export const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT8 = onnx.TensorProto.DataType.INT8;
const INT32 = onnx.TensorProto.DataType.INT32;
/** Domain of onnxruntime's contrib ops (DynamicQuantizeMatMul, ...). */
const MS_DOMAIN = 'com.microsoft';

export interface EncoderGraphOptions {
  precision?: Precision;
  /**
   * false: the hidden-states-only graph: no attn.N outputs, no head_mask input, and each
   * layer's attention core (Q·Kᵀ, scale, padding mask, softmax, ·V) is one onnxruntime
   * MultiHeadAttention op (com.microsoft). Default true (the graph described at the top).
   */
  attentionOutputs?: boolean;
}
const INT64 = onnx.TensorProto.DataType.INT64;
/** HF's additive mask value for padded keys: torch.finfo(float32).min. */
const MASKED = -3.4028234663852886e38;

type Dim = number | string;

/** Builds one ONNX graph node by node (also used by the structural probe's training step). */
export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();
  private usesMsDomain = false;

  private fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A float initializer (weights). Raw little-endian bytes, as ONNX raw_data requires. */
  floats(name: string, data: Float32Array, dims: number[]): string {
    this.initializers.push({ name, dataType: FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** A shared small constant (scalars and shape vectors), deduplicated by value. */
  /** An int8 initializer (quantised weights). */
  int8s(name: string, data: Int8Array, dims: number[]): string {
    this.initializers.push({ name, dataType: INT8, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  constF(values: number[], dims: number[] = []): string {
    const key = `f:${dims.join(',')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_f');
      this.floats(name, Float32Array.from(values), dims);
      this.constants.set(key, name);
    }
    return name;
  }

  constI(values: number[], dims: number[] = [values.length]): string {
    const key = `i:${dims.join(',')}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_i');
      const data = BigInt64Array.from(values.map((v) => BigInt(v)));
      this.initializers.push({ name, dataType: INT64, dims, rawData: new Uint8Array(data.buffer) });
      this.constants.set(key, name);
    }
    return name;
  }

  /** Add a node; returns its (first) output name. `out` names a graph output explicitly. */
  /** A node; `out` names its output (or, for an op with several, all of them); returns the first. */
  op(opType: string, inputs: string[], attrs: Record<string, number | number[] | string> = {}, out?: string | string[]): string {
    const outputs = out === undefined ? [this.fresh(opType.toLowerCase())] : typeof out === 'string' ? [out] : out;
    const attribute = Object.entries(attrs).map(([name, v]) => attr(name, v));
    this.nodes.push({ opType, input: inputs, output: outputs, name: `${opType}_${this.nodes.length}`, attribute });
    return outputs[0]!;
  }

  /** An onnxruntime contrib op (domain com.microsoft); the model then imports that domain. */
  msOp(opType: string, inputs: string[], attrs: Record<string, number | number[]> = {}, out?: string): string {
    const output = this.op(opType, inputs, attrs, out);
    this.nodes[this.nodes.length - 1]!.domain = MS_DOMAIN;
    this.usesMsDomain = true;
    return output;
  }

  model(name: string, docString: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: ONNX_OPSET }, ...(this.usesMsDomain ? [{ domain: MS_DOMAIN, version: 1 }] : [])],
      producerName: 'bert-probe',
      producerVersion: String(GRAPH_VERSION),
      docString,
      graph: { name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

const FLOAT_ATTRIBUTES = new Set(['epsilon']);

function attr(name: string, v: number | number[] | string): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  // Of the ops used here only LayerNormalization's epsilon is a float attribute.
  if (FLOAT_ATTRIBUTES.has(name)) return { name, type: T.FLOAT, f: v };
  return { name, type: T.INT, i: v };
}

/** HF Linear weight [out, in] → [in, out] for MatMul(x, W). */
function transposed(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w[o * inp + i]!;
  return t;
}

function weight(weights: WeightMap, name: string, shape: number[]): Float32Array {
  const t = weights.get(name);
  if (!t) throw new InputError(`weight '${name}' is missing`, { expected: `a tensor of shape [${shape.join(', ')}]`, found: 'nothing under that name', fix: 'load the model with loadModel, which maps every checkpoint layout to canonical names' });
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new InputError(`weight '${name}' has the wrong shape`, { expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}]`, fix: 'check that config.json belongs to these weights' });
  }
  return t.data;
}

/**
 * Symmetric per-column int8 quantisation of a [inp, out] matrix: scale_j = max_i |w_ij| / 127,
 * q_ij = round(w_ij / scale_j) (zero point 0, range -127..127 so that -q never overflows).
 */
export function quantizeColumns(wT: Float32Array, inp: number, out: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(out);
  for (let i = 0; i < inp; i++) {
    const row = i * out;
    for (let j = 0; j < out; j++) scale[j] = Math.max(scale[j]!, Math.abs(wT[row + j]!));
  }
  for (let j = 0; j < out; j++) scale[j] = scale[j]! > 0 ? scale[j]! / 127 : 1;
  const q = new Int8Array(wT.length);
  for (let i = 0; i < inp; i++) {
    const row = i * out;
    for (let j = 0; j < out; j++) q[row + j] = Math.max(-127, Math.min(127, Math.round(wT[row + j]! / scale[j]!)));
  }
  return { q, scale };
}

/** Shared parts of both graphs. */
class BertParts {
  constructor(
    readonly g: GraphBuilder,
    readonly config: BertConfig,
    readonly weights: WeightMap,
    readonly precision: Precision = 'fp32',
  ) {}

  /** x·Wᵀ + b with W [out, in] from the checkpoint (int8: DynamicQuantizeMatMul, see the top). */
  dense(x: string, prefix: string, out: number, inp: number): string {
    const wT = transposed(weight(this.weights, `${prefix}.weight`, [out, inp]), out, inp);
    const b = this.g.floats(`${prefix}.bias`, weight(this.weights, `${prefix}.bias`, [out]), [out]);
    if (this.precision === 'int8') {
      const { q, scale } = quantizeColumns(wT, inp, out);
      const w = this.g.int8s(`${prefix}.weight_t_int8`, q, [inp, out]);
      const s = this.g.floats(`${prefix}.weight_scale`, scale, [out]);
      // Inputs: A, B, b_scale, b_zero_point (absent: 0), bias (onnxruntime ContribOperators.md).
      return this.g.msOp('DynamicQuantizeMatMul', [x, w, s, '', b]);
    }
    const w = this.g.floats(`${prefix}.weight_t`, wT, [inp, out]);
    return this.g.op('Add', [this.g.op('MatMul', [x, w]), b]);
  }

  /**
   * GELU(x·Wᵀ + b), exact (erf) GELU as onnxruntime's contrib ops: BiasGelu (adds b, then
   * GELU) after the fp32 product, Gelu after the int8 one (DynamicQuantizeMatMul adds the bias).
   * Emitted here rather than left to onnxruntime's GeluFusion because the sessions run at
   * optimisation level 'basic' (see onnx-engine.ts: its SkipLayerNormalization fusion was slower).
   */
  denseGelu(x: string, prefix: string, out: number, inp: number): string {
    if (this.precision === 'int8') return this.g.msOp('Gelu', [this.dense(x, prefix, out, inp)]);
    const wT = transposed(weight(this.weights, `${prefix}.weight`, [out, inp]), out, inp);
    const b = this.g.floats(`${prefix}.bias`, weight(this.weights, `${prefix}.bias`, [out]), [out]);
    return this.g.msOp('BiasGelu', [this.g.op('MatMul', [x, this.g.floats(`${prefix}.weight_t`, wT, [inp, out])]), b]);
  }

  /**
   * The rest of encoder layer l after the attention core: attention output dense + residual +
   * LayerNorm, intermediate (GELU), output dense + residual + LayerNorm; declares layer.(l+1).
   */
  layerTail(context: string, hidden: string, l: number, contextSize: number): string {
    const { hiddenSize: H, intermediateSize: I } = this.config;
    const pre = `encoder.layer.${l}`;
    const attended = this.layerNorm(this.g.op('Add', [this.dense(context, `${pre}.attention.output.dense`, H, contextSize), hidden]), `${pre}.attention.output.LayerNorm`);
    const inner = this.denseGelu(attended, `${pre}.intermediate.dense`, I, H);
    const out = this.layerNorm(this.g.op('Add', [this.dense(inner, `${pre}.output.dense`, H, I), attended]), `${pre}.output.LayerNorm`, layerName(l + 1));
    this.g.output(layerName(l + 1), FLOAT, ['batch', 'seq', H]);
    return out;
  }

  layerNorm(x: string, prefix: string, out?: string): string {
    const H = this.config.hiddenSize;
    const gamma = this.g.floats(`${prefix}.weight`, weight(this.weights, `${prefix}.weight`, [H]), [H]);
    const beta = this.g.floats(`${prefix}.bias`, weight(this.weights, `${prefix}.bias`, [H]), [H]);
    return this.g.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: this.config.layerNormEps }, out);
  }

}

/**
 * The encoder graph (see the top of this file). `keepHeads` (per layer, 0-based heads) builds
 * the pruned model: smaller Q/K/V and attention-output products (prune-heads.ts); head_mask
 * keeps its [L, heads] shape (the kept heads' entries are used) and attn.(l+1) has the kept heads.
 */
export function buildEncoderGraph(config: BertConfig, fullWeights: WeightMap, keepHeads?: KeepHeads, opts: EncoderGraphOptions = {}): Uint8Array {
  const weights = keepHeads ? pruneHeadWeights(config, fullWeights, keepHeads) : fullWeights;
  const g = new GraphBuilder();
  const precision = opts.precision ?? 'fp32';
  const p = new BertParts(g, config, weights, precision);
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  const L = config.numHiddenLayers;
  const heads = config.numAttentionHeads;
  const d = H / heads;

  const inputIds = g.input('input_ids', INT64, ['batch', 'seq']);
  const attentionMask = g.input('attention_mask', INT64, ['batch', 'seq']);
  const tokenTypeIds = g.input('token_type_ids', INT64, ['batch', 'seq']);
  const withAttention = opts.attentionOutputs ?? true;
  const headMask = withAttention ? g.input('head_mask', FLOAT, [L, heads]) : '';

  // Embeddings: word + position (0..seq-1) + token type, LayerNorm.
  const wordEmb = g.floats('embeddings.word_embeddings.weight', weight(weights, 'embeddings.word_embeddings.weight', [config.vocabSize, H]), [config.vocabSize, H]);
  const posEmb = g.floats('embeddings.position_embeddings.weight', weight(weights, 'embeddings.position_embeddings.weight', [config.maxPositionEmbeddings, H]), [config.maxPositionEmbeddings, H]);
  const typeEmb = g.floats('embeddings.token_type_embeddings.weight', weight(weights, 'embeddings.token_type_embeddings.weight', [config.typeVocabSize, H]), [config.typeVocabSize, H]);
  const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), g.constI([1], [])], { axis: 0 });
  const positions = g.op('Range', [g.constI([0], []), seqLen, g.constI([1], [])]);
  const summed = g.op('Add', [g.op('Add', [g.op('Gather', [wordEmb, inputIds], { axis: 0 }), g.op('Gather', [posEmb, positions], { axis: 0 })]), g.op('Gather', [typeEmb, tokenTypeIds], { axis: 0 })]);
  let hidden = p.layerNorm(summed, 'embeddings.LayerNorm', layerName(0));
  g.output(layerName(0), FLOAT, ['batch', 'seq', H]);

  // Padding mask. Full graph: additive [batch, 1, 1, seq], 0 for real tokens, float32 min for
  // padding (HF). Hidden-states graph: MultiHeadAttention's key_padding_mask, int32 [batch, seq]
  // (1 real, 0 padding; the op adds its mask_filter_value, -10000, to padded keys' scores, whose
  // softmax weight is then exp(-10000 - max) = 0 in float32, as with float32 min).
  let mask = '';
  let keyPadding = '';
  if (withAttention) {
    const keep = g.op('Cast', [attentionMask], { to: FLOAT });
    const additive = g.op('Mul', [g.op('Sub', [g.constF([1]), keep]), g.constF([MASKED])]);
    mask = g.op('Unsqueeze', [additive, g.constI([1, 2])]);
  } else {
    keyPadding = g.op('Cast', [attentionMask], { to: INT32 });
  }

  for (let l = 0; l < L; l++) {
    const pre = `encoder.layer.${l}`;
    const kept = keepHeads?.[l] ?? Array.from({ length: heads }, (_, h) => h);
    const n = kept.length;
    if (n === 0) {
      // Every head pruned: the attention output is its dense layer's bias alone.
      const bias = g.floats(`${pre}.attention.output.dense.bias`, weight(weights, `${pre}.attention.output.dense.bias`, [H]), [H]);
      const attendedOnly = p.layerNorm(g.op('Add', [bias, hidden]), `${pre}.attention.output.LayerNorm`);
      const innerOnly = p.denseGelu(attendedOnly, `${pre}.intermediate.dense`, I, H);
      hidden = p.layerNorm(g.op('Add', [p.dense(innerOnly, `${pre}.output.dense`, H, I), attendedOnly]), `${pre}.output.LayerNorm`, layerName(l + 1));
      g.output(layerName(l + 1), FLOAT, ['batch', 'seq', H]);
      continue;
    }
    if (!withAttention) {
      // Q, K, V [batch, seq, n·d] in, context [batch, seq, n·d] out; scale 1/√d (the op's default).
      const q = p.dense(hidden, `${pre}.attention.self.query`, n * d, H);
      const k = p.dense(hidden, `${pre}.attention.self.key`, n * d, H);
      const v = p.dense(hidden, `${pre}.attention.self.value`, n * d, H);
      hidden = p.layerTail(g.msOp('MultiHeadAttention', [q, k, v, '', keyPadding], { num_heads: n }), hidden, l, n * d);
      continue;
    }
    const headShape = g.constI([0, 0, n, d]);
    const mergedShape = g.constI([0, 0, n * d]);
    // Self-attention.
    const split = (x: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [x, headShape])], { perm });
    // (One fused Q/K/V product was tried: slower under onnxruntime 1.30 on CPU, so three.)
    const q = split(p.dense(hidden, `${pre}.attention.self.query`, n * d, H), [0, 2, 1, 3]);
    const kT = split(p.dense(hidden, `${pre}.attention.self.key`, n * d, H), [0, 2, 3, 1]);
    const v = split(p.dense(hidden, `${pre}.attention.self.value`, n * d, H), [0, 2, 1, 3]);
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), g.constF([1 / Math.sqrt(d)])]), mask]);
    const probs = g.op('Softmax', [scores], { axis: -1 });
    const layerRow = g.op('Gather', [headMask, g.constI([l], [])], { axis: 0 });
    const layerMask = g.op('Reshape', [n === heads ? layerRow : g.op('Gather', [layerRow, g.constI([...kept])], { axis: 0 }), g.constI([1, n, 1, 1])]);
    const masked = g.op('Mul', [probs, layerMask], {}, attnName(l + 1));
    g.output(attnName(l + 1), FLOAT, ['batch', n, 'seq', 'seq']);
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [masked, v])], { perm: [0, 2, 1, 3] }), mergedShape]);
    hidden = p.layerTail(context, hidden, l, n * d);
  }
  return g.model('bert_encoder', `BERT encoder (${L} layers, hidden ${H}, ${heads} heads, ${precision}) built by bert-probe`);
}

/** The MLM head graph: dense, GELU, LayerNorm, decoder (tied to word embeddings if absent), bias. */
export function buildMlmGraph(config: BertConfig, weights: WeightMap): Uint8Array {
  const g = new GraphBuilder();
  const p = new BertParts(g, config, weights);
  const H = config.hiddenSize;
  const V = config.vocabSize;
  const hidden = g.input('hidden', FLOAT, ['batch', 'seq', H]);
  const t = p.layerNorm(p.denseGelu(hidden, 'cls.predictions.transform.dense', H, H), 'cls.predictions.transform.LayerNorm');
  const decoderName = weights.has('cls.predictions.decoder.weight') ? 'cls.predictions.decoder.weight' : 'embeddings.word_embeddings.weight';
  const decoder = g.floats('decoder_t', transposed(weight(weights, decoderName, [V, H]), V, H), [H, V]);
  const bias = g.floats('cls.predictions.bias', weight(weights, 'cls.predictions.bias', [V]), [V]);
  g.op('Add', [g.op('MatMul', [t, decoder]), bias], {}, 'mlm_logits');
  g.output('mlm_logits', FLOAT, ['batch', 'seq', V]);
  return g.model('bert_mlm_head', 'BERT masked-LM head built by bert-probe');
}
