import { InputError } from '../util/errors.js';
import type { Tensor, Tensor1D, Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import { noMlmHead, resolveFilter, validateBatch } from './forward-batch.js';
import type { Tf, TfjsRuntime } from './tfjs-backend.js';
import type { ArrayTensor, BertConfig, Engine, ForwardBatch, ForwardOutput, LoadedModel, OutputFilter, WeightMap } from './types.js';

/**
 * BERT's forward pass in TensorFlow.js ops, named after the parts of the paper (Devlin et al.
 * 2019, §3) and of Hugging Face's modeling_bert.py, which the fixtures were computed against:
 *
 *   embeddings      word + position + token type, then LayerNorm
 *   self-attention  softmax(Q Kᵀ / √d + additive padding mask), × head mask, × V
 *   attention output  dense, residual, LayerNorm
 *   intermediate    dense, exact GELU  x·½·(1 + erf(x/√2))  (Hendrycks & Gimpel 2016)
 *   output          dense, residual, LayerNorm
 *   MLM head        dense, GELU, LayerNorm, decoder tied to the word embeddings, + bias
 *
 * Eval mode: no dropout. Hidden states are kept as [B·T, H] matrices between parts so every
 * dense layer is one (fused bias) matrix product. The pieces are differentiable tfjs ops, so
 * `encode` can be wrapped in tf.grad (head importance needs d loss / d head mask).
 */

/** HF's additive mask value for padded keys: torch.finfo(float32).min. */
const MASKED = -3.4028234663852886e38;

interface Dense {
  /** [in, out] (HF stores [out, in]; transposed once at upload). */
  w: Tensor2D;
  b: Tensor1D;
  /** [out, in]: made by useInputGradients, for dy · Wᵀ without a transposed product. */
  wT?: Tensor2D;
}

interface LayerNorm {
  gamma: Tensor1D;
  beta: Tensor1D;
}

interface EncoderLayer {
  query: Dense;
  key: Dense;
  value: Dense;
  attentionOutput: Dense;
  attentionNorm: LayerNorm;
  intermediate: Dense;
  output: Dense;
  outputNorm: LayerNorm;
}

interface MlmHead {
  transform: Dense;
  norm: LayerNorm;
  /** [vocab, H] (used transposed). */
  decoder: Tensor2D;
  bias: Tensor1D;
}

export interface EncodeResult {
  /** L+1 tensors, each [B, T, H]. */
  hiddenStates: Tensor[];
  /** L tensors, each [B, heads, T, T]. */
  attentions: Tensor4D[];
}

export class TfjsBert {
  readonly tf: Tf;
  readonly config: BertConfig;
  private readonly wordEmbeddings: Tensor2D;
  private readonly positionEmbeddings: Tensor2D;
  private readonly tokenTypeEmbeddings: Tensor2D;
  private readonly embeddingsNorm: LayerNorm;
  private readonly layers: EncoderLayer[];
  private readonly mlm: MlmHead | null;

  constructor(tf: Tf, config: BertConfig, weights: WeightMap, withMlmHead: boolean) {
    this.tf = tf;
    this.config = config;
    const get = (name: string, shape: number[]): Tensor => {
      const t = weights.get(name);
      if (!t) throw new InputError(`weight '${name}' is missing`, { expected: `a tensor of shape [${shape.join(', ')}]`, found: 'nothing under that name', fix: 'load the model with loadModel, which maps every checkpoint layout to canonical names' });
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new InputError(`weight '${name}' has the wrong shape`, { expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}]`, fix: 'check that config.json belongs to these weights' });
      }
      return tf.tensor(t.data, t.shape, 'float32');
    };
    const H = config.hiddenSize;
    const I = config.intermediateSize;
    const dense = (prefix: string, out: number, inp: number): Dense => {
      const w = get(`${prefix}.weight`, [out, inp]);
      const wt = tf.transpose(w) as Tensor2D;
      w.dispose();
      return { w: wt, b: get(`${prefix}.bias`, [out]) as Tensor1D };
    };
    const norm = (prefix: string): LayerNorm => ({ gamma: get(`${prefix}.weight`, [H]) as Tensor1D, beta: get(`${prefix}.bias`, [H]) as Tensor1D });

    this.wordEmbeddings = get('embeddings.word_embeddings.weight', [config.vocabSize, H]) as Tensor2D;
    this.positionEmbeddings = get('embeddings.position_embeddings.weight', [config.maxPositionEmbeddings, H]) as Tensor2D;
    this.tokenTypeEmbeddings = get('embeddings.token_type_embeddings.weight', [config.typeVocabSize, H]) as Tensor2D;
    this.embeddingsNorm = norm('embeddings.LayerNorm');
    this.layers = [];
    for (let l = 0; l < config.numHiddenLayers; l++) {
      const p = `encoder.layer.${l}`;
      this.layers.push({
        query: dense(`${p}.attention.self.query`, H, H),
        key: dense(`${p}.attention.self.key`, H, H),
        value: dense(`${p}.attention.self.value`, H, H),
        attentionOutput: dense(`${p}.attention.output.dense`, H, H),
        attentionNorm: norm(`${p}.attention.output.LayerNorm`),
        intermediate: dense(`${p}.intermediate.dense`, I, H),
        output: dense(`${p}.output.dense`, H, I),
        outputNorm: norm(`${p}.output.LayerNorm`),
      });
    }
    this.mlm = withMlmHead
      ? {
          transform: dense('cls.predictions.transform.dense', H, H),
          norm: norm('cls.predictions.transform.LayerNorm'),
          // Tied to the word embeddings when the checkpoint has no separate decoder.
          decoder: weights.has('cls.predictions.decoder.weight') ? (get('cls.predictions.decoder.weight', [config.vocabSize, H]) as Tensor2D) : this.wordEmbeddings,
          bias: get('cls.predictions.bias', [config.vocabSize]) as Tensor1D,
        }
      : null;
  }

  get hasMlmHead(): boolean {
    return this.mlm !== null;
  }

  // ---- the parts ---------------------------------------------------------------------------

  private denseOp(x: Tensor2D, d: Dense): Tensor2D {
    if (!this.inputGradients) return this.tf.fused.matMul({ a: x, b: d.w, bias: d.b }) as Tensor2D;
    // The gradient with respect to x only, as dy · Wᵀ from a stored Wᵀ: tfjs's own gradients of
    // a product also compute dW, and both use transposed products, which the wasm backend runs
    // about 10 times slower than plain ones (measured: 2.7 s vs 0.28 s for [320, 3072]·[3072, 768]).
    const tf = this.tf;
    const wT = d.wT!;
    const f = tf.customGrad((...args: unknown[]) => {
      const input = args[0] as Tensor2D;
      return { value: tf.add(tf.matMul(input, d.w), d.b) as Tensor2D, gradFunc: (dy: Tensor) => [tf.matMul(dy as Tensor2D, wT)] };
    });
    return f(x) as Tensor2D;
  }

  private inputGradients = false;

  /**
   * Make gradients with respect to the inputs and head masks fast (never the weights): keeps a
   * transposed copy of every dense weight (about as much memory again as the encoder weights).
   */
  useInputGradients(): void {
    if (this.inputGradients) return;
    const dense = this.layers.flatMap((L) => [L.query, L.key, L.value, L.attentionOutput, L.intermediate, L.output]);
    if (this.mlm) dense.push(this.mlm.transform);
    for (const d of dense) d.wT = this.tf.keep(this.tf.transpose(d.w) as Tensor2D);
    this.inputGradients = true;
  }

  /** LayerNorm over the last axis (Ba et al. 2016), eps from the config. */
  private layerNorm(x: Tensor2D, n: LayerNorm): Tensor2D {
    const tf = this.tf;
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.config.layerNormEps))), n.gamma), n.beta);
  }

  /** Exact GELU: x · ½ · (1 + erf(x / √2)), as HF's "gelu" activation. */
  private gelu(x: Tensor2D): Tensor2D {
    const tf = this.tf;
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  }

  /** Embeddings: word + position (0..T-1) + token type, LayerNorm. Returns [B·T, H]. */
  embeddings(inputIds: Tensor2D, tokenTypeIds: Tensor2D): Tensor2D {
    const tf = this.tf;
    const [B, T] = inputIds.shape;
    const H = this.config.hiddenSize;
    const words = tf.gather(this.wordEmbeddings, tf.reshape(inputIds, [B * T]));
    const types = tf.gather(this.tokenTypeEmbeddings, tf.reshape(tokenTypeIds, [B * T]));
    const positions = tf.slice(this.positionEmbeddings, [0, 0], [T, H]);
    const sum = tf.reshape(tf.add(tf.reshape(tf.add(words, types), [B, T, H]), positions), [B * T, H]) as Tensor2D;
    return this.layerNorm(sum, this.embeddingsNorm);
  }

  /** Additive padding mask [B, 1, 1, T]: 0 where attention_mask is 1, float32 min where 0. */
  extendedMask(attentionMask: Tensor2D): Tensor4D {
    const tf = this.tf;
    const [B, T] = attentionMask.shape;
    return tf.reshape(tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), MASKED), [B, 1, 1, T]);
  }

  /**
   * One encoder layer (0-based index) on hidden [B·T, H]. `headMask` [heads] multiplies the
   * attention probabilities (HF head_mask); the returned probabilities are after that mask, as
   * HF returns them. A 4-d mask broadcasts onto [B, heads, T, T] as it is: [B, heads, T, 1]
   * gives one factor per example, head and query token, whose gradient is Michel et al.'s
   * per-token ⟨∂L/∂ctx, ctx⟩ (head importance, src/probes/ablate-importance.ts).
   */
  layer(index: number, hidden: Tensor2D, mask: Tensor4D, batch: number, seqLen: number, headMask?: Tensor1D | Tensor4D): { hidden: Tensor2D; attention: Tensor4D } {
    const tf = this.tf;
    const L = this.layers[index]!;
    const heads = this.config.numAttentionHeads;
    const H = this.config.hiddenSize;
    const d = H / heads;
    const split = (x: Tensor2D) => tf.transpose(tf.reshape(x, [batch, seqLen, heads, d]), [0, 2, 1, 3]) as Tensor4D;

    // Self-attention.
    const q = split(this.denseOp(hidden, L.query));
    const k = split(this.denseOp(hidden, L.key));
    const v = split(this.denseOp(hidden, L.value));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), mask);
    let probs = tf.softmax(scores, -1) as Tensor4D;
    if (headMask) probs = tf.mul(probs, headMask.rank === 4 ? headMask : tf.reshape(headMask, [1, heads, 1, 1]));
    const context = tf.reshape(tf.transpose(tf.matMul(probs, v), [0, 2, 1, 3]), [batch * seqLen, H]) as Tensor2D;

    // Attention output: dense, residual, LayerNorm.
    const attended = this.layerNorm(tf.add(this.denseOp(context, L.attentionOutput), hidden), L.attentionNorm);

    // Intermediate (GELU) and output: dense, residual, LayerNorm.
    const inner = this.gelu(this.denseOp(attended, L.intermediate));
    const out = this.layerNorm(tf.add(this.denseOp(inner, L.output), attended), L.outputNorm);
    return { hidden: out, attention: probs };
  }

  /** MLM head on hidden [B·T, H] → logits [B·T, vocab]. */
  mlmLogits(hidden: Tensor2D): Tensor2D {
    if (!this.mlm) throw noMlmHead();
    const tf = this.tf;
    const t = this.layerNorm(this.gelu(this.denseOp(hidden, this.mlm.transform)), this.mlm.norm);
    return tf.add(tf.matMul(t, this.mlm.decoder, false, true), this.mlm.bias);
  }

  /**
   * The whole encoder as one differentiable function (no per-layer cleanup): call it inside
   * tf.tidy or tf.grad. `headMask` is [L, heads], or one 4-d mask per layer (see `layer`).
   */
  encode(inputIds: Tensor2D, attentionMask: Tensor2D, tokenTypeIds: Tensor2D, headMask?: Tensor2D | readonly Tensor4D[]): EncodeResult {
    const tf = this.tf;
    const [B, T] = inputIds.shape;
    const H = this.config.hiddenSize;
    const mask = this.extendedMask(attentionMask);
    let h = this.embeddings(inputIds, tokenTypeIds);
    const hiddenStates: Tensor[] = [tf.reshape(h, [B, T, H])];
    const attentions: Tensor4D[] = [];
    for (let l = 0; l < this.layers.length; l++) {
      const hm = !headMask ? undefined : Array.isArray(headMask) ? (headMask as readonly Tensor4D[])[l] : (tf.reshape(tf.slice(headMask as Tensor2D, [l, 0], [1, -1]), [-1]) as Tensor1D);
      const r = this.layer(l, h, mask, B, T, hm);
      h = r.hidden;
      hiddenStates.push(tf.reshape(h, [B, T, H]));
      attentions.push(r.attention);
    }
    return { hiddenStates, attentions };
  }

  dispose(): void {
    const all: Tensor[] = [this.wordEmbeddings, this.positionEmbeddings, this.tokenTypeEmbeddings, this.embeddingsNorm.gamma, this.embeddingsNorm.beta];
    for (const L of this.layers) {
      for (const d of [L.query, L.key, L.value, L.attentionOutput, L.intermediate, L.output]) all.push(d.w, d.b, ...(d.wT ? [d.wT] : []));
      all.push(L.attentionNorm.gamma, L.attentionNorm.beta, L.outputNorm.gamma, L.outputNorm.beta);
    }
    if (this.mlm) {
      all.push(this.mlm.transform.w, this.mlm.transform.b, this.mlm.norm.gamma, this.mlm.norm.beta, this.mlm.bias, ...(this.mlm.transform.wT ? [this.mlm.transform.wT] : []));
      if (this.mlm.decoder !== this.wordEmbeddings) all.push(this.mlm.decoder);
    }
    for (const t of all) t.dispose();
  }
}

/** The tfjs Engine: per-layer tf.tidy so memory stays bounded (wasm heap included). */
export class TfjsEngine implements Engine {
  readonly kind = 'tfjs' as const;
  readonly backend: string;
  readonly config: BertConfig;
  readonly bert: TfjsBert;
  private readonly tf: Tf;
  private readonly backendName: string;

  constructor(model: LoadedModel, runtime: TfjsRuntime) {
    this.tf = runtime.tf;
    this.backendName = runtime.backend;
    this.backend = runtime.label;
    this.config = model.config;
    this.bert = new TfjsBert(runtime.tf, model.config, model.weights, model.hasMlmHead);
  }

  async forward(batch: ForwardBatch, want?: OutputFilter): Promise<ForwardOutput> {
    const tf = this.tf;
    const cfg = this.config;
    // The tfjs backend is process-wide: if other code switched it since this engine was made,
    // switch back, so the weights are not copied over to (and run on) another backend.
    if (tf.getBackend() !== this.backendName) await tf.setBackend(this.backendName);
    validateBatch(batch, cfg);
    const filter = resolveFilter(want, cfg.numHiddenLayers, batch);
    if (filter.mlm && !this.bert.hasMlmHead) throw noMlmHead();
    const { batchSize: B, seqLen: T } = batch;
    const H = cfg.hiddenSize;
    const heads = cfg.numAttentionHeads;
    const out: ForwardOutput = { hiddenStates: new Array(cfg.numHiddenLayers + 1).fill(undefined), attentions: new Array(cfg.numHiddenLayers).fill(undefined) };

    const ids = tf.tensor2d(batch.inputIds, [B, T], 'int32');
    const types = tf.tensor2d(batch.tokenTypeIds, [B, T], 'int32');
    const am = tf.tensor2d(batch.attentionMask, [B, T], 'int32');
    const headMask = batch.headMask ? tf.tensor2d(batch.headMask, [cfg.numHiddenLayers, heads], 'float32') : undefined;
    const mask = tf.tidy(() => this.bert.extendedMask(am));
    let h: Tensor2D = tf.tidy(() => this.bert.embeddings(ids, types));
    try {
      if (filter.hidden.has(0)) out.hiddenStates[0] = await toArray(h, [B, T, H]);
      for (let l = 0; l < cfg.numHiddenLayers; l++) {
        const r = tf.tidy(() => this.bert.layer(l, h, mask, B, T, headMask ? (tf.reshape(tf.slice(headMask, [l, 0], [1, -1]), [-1]) as Tensor1D) : undefined));
        h.dispose();
        h = r.hidden;
        if (filter.attentions.has(l + 1)) out.attentions[l] = await toArray(r.attention, [B, heads, T, T]);
        r.attention.dispose();
        if (filter.hidden.has(l + 1)) out.hiddenStates[l + 1] = await toArray(h, [B, T, H]);
      }
      if (filter.mlm) {
        const at = filter.mlmPositions;
        const logits = tf.tidy(() => this.bert.mlmLogits(at ? tf.gather(h, tf.tensor1d(at, 'int32')) : h));
        out.mlmLogits = await toArray(logits, at ? [at.length, cfg.vocabSize] : [B, T, cfg.vocabSize]);
        logits.dispose();
      }
    } finally {
      h.dispose();
      tf.dispose([ids, types, am, mask, ...(headMask ? [headMask] : [])]);
    }
    return out;
  }

  async dispose(): Promise<void> {
    this.bert.dispose();
  }
}

async function toArray(t: Tensor, shape: number[]): Promise<ArrayTensor> {
  const data = await t.data();
  return { data: data instanceof Float32Array ? data : Float32Array.from(data), shape };
}
