/**
 * Building blocks for probe definitions (probe-model.ts), written with the ops of
 * src/probes/graph; their gradients are derived (test/probe-blocks.test.ts checks each against
 * finite differences). Weight layout is [in, out] (x·W).
 */
import type { Graph, Value } from './graph/types.js';
import type { ParamSpec } from './probe-model.js';

/** x·W (+ b): W [in, out], b [out]. */
export function linear(g: Graph, x: Value, w: Value, b?: Value): Value {
  const y = g.matmul(x, w);
  return b ? g.add(y, b) : y;
}

/** torch.nn.Linear's parameters and default init (weight and bias uniform ±1/√in). */
export function linearParams(prefix: string, dIn: number, dOut: number, bias = true): ParamSpec[] {
  const a = 1 / Math.sqrt(dIn);
  const out: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [dIn, dOut], init: 'kaiming-uniform' }];
  if (bias) out.push({ name: `${prefix}.bias`, shape: [dOut], init: { uniform: [-a, a] } });
  return out;
}

export interface MlpOptions {
  /** Dropout before the last Linear (Tenney: 0.3, jiant defaults.conf:457). */
  dropout: number;
  /** Name of the dropout mask input (unique per probe). */
  maskName: string;
  /** LayerNorm epsilon (torch.nn.LayerNorm default 1e-5). */
  eps?: number;
}

/**
 * Tenney et al.'s classifier (jiant simple_modules.py:54-65, Classifier cls_type 'mlp'):
 * Linear(d_in, hid) → Tanh → LayerNorm(hid) → Dropout(p) → Linear(hid, n_out).
 * Params by name `${prefix}.0.weight`, `.0.bias`, `.ln.weight`, `.ln.bias`, `.1.weight`, `.1.bias` (see mlpParams).
 */
export function mlp(g: Graph, x: Value, p: Record<string, Value>, prefix: string, opts: MlpOptions): Value {
  const at = (k: string) => {
    const v = p[`${prefix}.${k}`];
    if (!v) throw new Error(`mlp: parameter '${prefix}.${k}' missing`);
    return v;
  };
  const h = g.tanh(linear(g, x, at('0.weight'), at('0.bias')));
  const n = g.layerNorm(h, at('ln.weight'), at('ln.bias'), opts.eps ?? 1e-5);
  return linear(g, g.dropout(n, opts.dropout, opts.maskName), at('1.weight'), at('1.bias'));
}

export function mlpParams(prefix: string, dIn: number, hidden: number, nOut: number): ParamSpec[] {
  return [
    ...linearParams(`${prefix}.0`, dIn, hidden),
    { name: `${prefix}.ln.weight`, shape: [hidden], init: 'ones' },
    { name: `${prefix}.ln.bias`, shape: [hidden], init: 'zeros' },
    ...linearParams(`${prefix}.1`, hidden, nOut),
  ];
}

/**
 * Scalar mix (AllenNLP scalar_mix.py:61-69, as jiant uses it: no layer norm, no weight
 * dropout): γ · Σ_ℓ softmax(w)_ℓ · h_ℓ over a stacked input [L, …]; w [L] (init 0), γ [1] (init 1).
 */
export function scalarMix(g: Graph, stacked: Value, w: Value, gamma: Value): Value {
  const L = stacked.shape[0]!;
  const s = g.reshape(g.softmax(w, 0), [L, ...stacked.shape.slice(1).map(() => 1)]);
  return g.mul(g.reduceSum(g.mul(stacked, s), [0]), gamma);
}

export function scalarMixParams(prefix: string, layers: number): ParamSpec[] {
  return [
    { name: `${prefix}.weights`, shape: [layers], init: 'zeros' },
    { name: `${prefix}.gamma`, shape: [1], init: 'ones' },
  ];
}

/**
 * Self-attentive span pooling (AllenNLP self_attentive_span_extractor.py:36, 65-102):
 * a_t = w·h_t + b, softmax of a over the tokens of each span only, span = Σ_t softmax(a)_t h_t.
 * Ragged spans as index inputs: `index` int64 [spans, width] holds each span's token rows in h
 * ([tokens, D]), `inSpan` bool [spans, width] marks the real ones (padding: any row, false).
 * Returns [spans, D]. (b does not change a softmax; kept as the reference has it.)
 */
export function spanAttentionPool(g: Graph, h: Value, index: Value, inSpan: Value, w: Value, b: Value): Value {
  const scores = g.reshape(linear(g, h, w, b), [-1]); // [tokens]
  const a = g.gather(scores, index); // [spans, width]
  // Masked positions get −1e30 before the softmax (AllenNLP masked_softmax fills with the
  // dtype's minimum): their weight is exactly 0, and so is their gradient.
  const p = g.softmax(g.where(inSpan, a, g.constant([-1e30])), 1);
  const tokens = g.gather(h, index); // [spans, width, D]
  return g.reduceSum(g.mul(tokens, g.unsqueeze(p, [2])), [1]);
}

export function spanAttentionParams(prefix: string, dim: number): ParamSpec[] {
  return linearParams(prefix, dim, 1);
}

/**
 * torch.nn.functional.cross_entropy(logits, labels, weight=classWeights), reduction 'mean':
 * Σ_i w_{y_i}·(−log softmax(logits_i)_{y_i}) / Σ_i w_{y_i} (plain mean without class weights).
 * logits [N, C] (C static), labels int64 [N].
 */
export function softmaxCrossEntropy(g: Graph, logits: Value, labels: Value, classWeights?: Value): Value {
  const C = logits.shape[logits.shape.length - 1];
  if (typeof C !== 'number') throw new Error('softmaxCrossEntropy: the class axis must have a static size');
  const eye = new Float64Array(C * C);
  for (let c = 0; c < C; c++) eye[c * C + c] = 1;
  const onehot = g.gather(g.constant(eye, [C, C]), labels); // [N, C]
  const nll = g.neg(g.reduceSum(g.mul(onehot, g.logSoftmax(logits, -1)), [1])); // [N]
  if (!classWeights) return g.reduceMean(nll, [0]);
  const wi = g.reduceSum(g.mul(onehot, classWeights), [1]); // [N]
  return g.div(g.reduceSum(g.mul(nll, wi), [0]), g.reduceSum(wi, [0]));
}

/**
 * Multi-label sigmoid binary cross-entropy, mean over every (item, label) entry — jiant's
 * F.binary_cross_entropy(sigmoid(logits), k_hot) (edge_probing.py:232-233) — in the stable
 * form max(x,0) − x·t + log(1 + e^{−|x|}) (torch's binary_cross_entropy_with_logits).
 */
export function sigmoidBce(g: Graph, logits: Value, targets: Value): Value {
  const perEntry = g.add(g.sub(g.relu(logits), g.mul(logits, targets)), g.log(g.add(g.constant([1]), g.exp(g.neg(g.abs(logits))))));
  return g.reduceMean(perEntry, logits.shape.map((_, i) => i));
}

/**
 * Inputs of the structural losses for one batch (as structural-train.ts structuralFeeds builds
 * them). The batch's sentences are padded in groups, each group to its own length (a batch mean
 * does not depend on how its sentences are grouped, and the distance probe's Gram matrices cost
 * length² per sentence: padding 20 random PTB sentences to their longest does 4.2× the useful
 * work, three groups by length 1.35×).
 * - x [words, H] unpadded; rows int64 [positions] each padded position's row in x, groups one after
 *   another (padding reads row 0: the mask zeroes every pair or word it enters, so its value and
 *   gradient are nothing); positions int64 [words] each word's padded position (rows' inverse:
 *   the gradient gathers back); sizes int64 [groups] each group's padded positions (b_g·len_g),
 *   needed when there is more than one group.
 * - per group: target and mask [b_g, len_g, len_g] (distance) or [b_g, len_g] (depth); norm [b_g]
 *   the sentence's length² (distance) or length (depth) times the batch's sentence count, so the
 *   loss (the groups' sum) is the batch mean; eye [len_g, len_g] the identity (distance only).
 */
export interface StructuralGroup {
  target: Value;
  mask: Value;
  norm: Value;
  eye?: Value;
}

export interface StructuralInputs {
  x: Value;
  rows: Value;
  positions: Value;
  sizes?: Value;
  groups: StructuralGroup[];
}

/** Per-word rows v [words, k] gathered into each group's padded [b_g, len_g, k] (padding positions are masked). */
function padWords(g: Graph, v: Value, inp: StructuralInputs): Value[] {
  const k = Number(v.shape[1]);
  const padded = g.gatherOnce(v, inp.rows, inp.positions);
  if (inp.groups.length > 1 && !inp.sizes) throw new Error('structural loss: `sizes` [groups] is required with more than one group');
  const parts = inp.groups.length === 1 ? [padded] : g.split(padded, inp.sizes!, inp.groups.length);
  return parts.map((part, i) => {
    const [b, len] = inp.groups[i]!.target.shape;
    return g.reshape(part, [b!, len!, k]);
  });
}

/** Σ_sentences Σ |pred − target|·mask / norm over one group (Hewitt & Manning loss.py L1DistanceLoss/L1DepthLoss; norm carries the batch's 1/b). */
function l1Loss(g: Graph, pred: Value, grp: StructuralGroup, axes: number[]): Value {
  const perSentence = g.div(g.reduceSum(g.mul(g.abs(g.sub(pred, grp.target)), grp.mask), axes), grp.norm);
  return g.reduceSum(perSentence, [0]);
}

function sum(g: Graph, xs: Value[]): Value {
  return xs.reduce((a, b) => g.add(a, b));
}

/**
 * Hewitt & Manning's distance probe loss (structural-probes probe.py TwoWordPSDProbe, loss.py
 * L1DistanceLoss) with the squared distances in Gram form ‖Bhᵢ‖² + ‖Bhⱼ‖² − 2 (Bhᵢ)·(Bhⱼ),
 * as the hand-derived structural-onnx.ts did before issue 9. proj [H, rank] (the reference's `proj`, B = projᵀ).
 * X·B on the unpadded words, then gathered into each group's padded [b_g, len_g, rank].
 * ‖Bhᵢ‖² is read off the Gram matrix's diagonal (G ⊙ I summed over a row): the whole gradient
 * then flows back through the one batched G = T·Tᵀ, with no extra elementwise passes over the
 * [b, len, rank] projections (1.9 ms of a 15 ms step at bert-base size, bench trainer).
 */
export function structuralDistanceLoss(g: Graph, proj: Value, inp: StructuralInputs): Value {
  if (inp.groups.some((grp) => !grp.eye)) throw new Error('structuralDistanceLoss: the identity input `eye` [len, len] of every group is required');
  const ts = padWords(g, g.matmul(inp.x, proj), inp);
  return sum(
    g,
    ts.map((t, i) => {
      const grp = inp.groups[i]!;
      const gram = g.matmul(t, g.transpose(t, [0, 2, 1])); // [b, len, len]
      const s = g.reduceSum(g.mul(gram, grp.eye!), [2], true); // [b, len, 1]
      const pred = g.sub(g.add(s, g.transpose(s, [0, 2, 1])), g.mul(gram, g.constant([2])));
      return l1Loss(g, pred, grp, [1, 2]);
    }),
  );
}

/**
 * Hewitt & Manning's depth probe loss (OneWordPSDProbe, L1DepthLoss): pred = ‖Bhᵢ‖², computed on
 * the unpadded projections and only the norms gathered into the padded batch.
 */
export function structuralDepthLoss(g: Graph, proj: Value, inp: StructuralInputs): Value {
  const norms = padWords(g, g.reduceSumSquare(g.matmul(inp.x, proj), [1], true), inp); // [b, len, 1] per group
  return sum(
    g,
    norms.map((n, i) => {
      const grp = inp.groups[i]!;
      const [b, len] = grp.target.shape;
      return l1Loss(g, g.reshape(n, [b!, len!]), grp, [1]);
    }),
  );
}

/** λ · Σ over params of Σ p² (an L2 penalty to add to a loss). */
export function l2Penalty(g: Graph, params: Value[], lambda: number): Value {
  let total: Value | null = null;
  for (const p of params) {
    const s = g.reduceSum(g.mul(p, p), p.shape.map((_, i) => i));
    total = total ? g.add(total, s) : s;
  }
  if (!total) throw new Error('l2Penalty: no parameters');
  return g.mul(total, g.constant([lambda]));
}
