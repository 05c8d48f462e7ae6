import { createHash } from 'node:crypto';
import type { ArrayTensor, BertConfig, WeightMap } from './types.js';
import { canonicalWeights } from './weight-names.js';

/**
 * The random-init control: weights drawn as BERT initialises them (HF
 * BertPreTrainedModel._init_weights: Linear and Embedding weights ~ N(0, initializer_range =
 * 0.02), the padding row of the word embeddings zeroed, biases 0, LayerNorm weight 1 / bias 0),
 * from a seeded PRNG so `--seed` reproduces them exactly. The MLM decoder is left out: it is
 * tied to the word embeddings (see WeightMap).
 */

export const INITIALIZER_RANGE = 0.02;

/**
 * xorshift128 (Marsaglia 2003, "Xorshift RNGs", J. Stat. Softw. 8(14)) seeded through
 * splitmix32 so nearby seeds give unrelated streams.
 */
export class Xorshift128 {
  private x: number;
  private y: number;
  private z: number;
  private w: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    // State kept as int32 (`| 0`) so V8 stores it unboxed; read as unsigned on output.
    this.x = splitmix() | 0 || 1;
    this.y = splitmix() | 0;
    this.z = splitmix() | 0;
    this.w = splitmix() | 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) | 0;
    return (this.w >>> 0) / 4294967296;
  }
}

/**
 * Fill `out` with N(0, std) by Marsaglia's polar form of Box-Muller (Marsaglia & Bray 1964):
 * two normals per accepted pair of uniforms, no trigonometry.
 */
export function fillNormal(out: Float32Array, std: number, rng: Xorshift128): void {
  const n = out.length;
  let i = 0;
  while (i < n) {
    const u = 2 * rng.next() - 1;
    const v = 2 * rng.next() - 1;
    const s = u * u + v * v;
    if (s >= 1 || s === 0) continue;
    const f = std * Math.sqrt((-2 * Math.log(s)) / s);
    out[i++] = u * f;
    if (i < n) out[i++] = v * f;
  }
}

/** Random weights of `config`'s shape, including the MLM head (decoder tied). Deterministic in `seed`. */
export function randomWeights(config: BertConfig, seed: number): WeightMap {
  const rng = new Xorshift128(seed);
  const weights: WeightMap = new Map();
  for (const spec of canonicalWeights(config)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (spec.init === 'normal') fillNormal(data, INITIALIZER_RANGE, rng);
    else if (spec.init === 'ones') data.fill(1);
    weights.set(spec.name, { data, shape: spec.shape });
  }
  const word = weights.get('embeddings.word_embeddings.weight')!;
  const H = config.hiddenSize;
  word.data.fill(0, config.padTokenId * H, (config.padTokenId + 1) * H);
  return weights;
}

/**
 * randomWeights, drawn on first use: a run whose engine finds its ONNX graph cached (the graph
 * holds the weights) never needs them, and drawing bert-base's 110M normals takes ~2 s of
 * every start-up (issue 14). Any read (get, has, size, iteration) draws all of them, in the
 * same order and so the same values as randomWeights.
 */
export function lazyRandomWeights(config: BertConfig, seed: number): WeightMap {
  return new LazyWeightMap(() => randomWeights(config, seed), { config, seed });
}

/**
 * What lazily drawn random weights are drawn from (randomWeights(config, seed)), so a worker can
 * draw the same values itself (the onnx engine builds a random-init graph in a throwaway worker,
 * onnx-build-worker.ts); null for any other map, or a lazy one something has changed.
 */
export function randomRecipe(weights: WeightMap): { config: BertConfig; seed: number } | null {
  return weights instanceof LazyWeightMap ? weights.recipeIfUnchanged() : null;
}

/**
 * Let go of lazily drawn random weights (lazyRandomWeights) once what needed them holds its own
 * copy (the onnx engine, after its graph is built: the session has the weights), so a run does
 * not keep bert-base's 440 MB twice. A later read draws them again, to the same values. Returns
 * false, keeping them, for any other map, and for a lazy map something has changed (set/delete).
 */
export function releaseDrawnWeights(weights: WeightMap): boolean {
  return weights instanceof LazyWeightMap && weights.release();
}

class LazyWeightMap extends Map<string, ArrayTensor> {
  private drawn: WeightMap | null = null;
  /** A set or delete happened: the map is no longer what `draw` gives, so it is never released. */
  private changed = false;

  constructor(
    private readonly draw: () => WeightMap,
    private readonly recipe: { config: BertConfig; seed: number },
  ) {
    super();
  }

  recipeIfUnchanged(): { config: BertConfig; seed: number } | null {
    return this.changed ? null : this.recipe;
  }

  release(): boolean {
    if (this.changed) return false;
    this.drawn = null;
    super.clear();
    return true;
  }

  private all(): WeightMap {
    if (!this.drawn) {
      this.drawn = this.draw();
      for (const [k, v] of this.drawn) super.set(k, v);
    }
    return this.drawn;
  }

  override get(key: string): ArrayTensor | undefined {
    this.all();
    return super.get(key);
  }
  override has(key: string): boolean {
    this.all();
    return super.has(key);
  }
  override set(key: string, value: ArrayTensor): this {
    this.all();
    this.changed = true;
    return super.set(key, value);
  }
  override delete(key: string): boolean {
    this.all();
    this.changed = true;
    return super.delete(key);
  }
  override get size(): number {
    this.all();
    return super.size;
  }
  override keys(): MapIterator<string> {
    this.all();
    return super.keys();
  }
  override values(): MapIterator<ArrayTensor> {
    this.all();
    return super.values();
  }
  override entries(): MapIterator<[string, ArrayTensor]> {
    this.all();
    return super.entries();
  }
  override [Symbol.iterator](): MapIterator<[string, ArrayTensor]> {
    this.all();
    return super[Symbol.iterator]();
  }
  override forEach(fn: (value: ArrayTensor, key: string, map: Map<string, ArrayTensor>) => void, thisArg?: unknown): void {
    this.all();
    super.forEach(fn, thisArg);
  }
}

/** Stand-in for a weights sha256 of the random control: over the generator, seed and config. */
export function randomWeightsSha256(config: BertConfig, seed: number): string {
  return createHash('sha256')
    .update(JSON.stringify({ generator: 'bert-probe/random-init/xorshift128-polar/v1', seed, config }))
    .digest('hex');
}
