import { InputError } from '../util/errors.js';
import type { BertConfig, WeightMap } from './types.js';

/**
 * Heads physically removed from the weights, as Hugging Face's `prune_heads` does
 * (modeling_bert.py BertAttention.prune_heads → pytorch_utils.prune_linear_layer; Michel et al.
 * 2019, M16-PPB modeling.py:787): for each layer, the query/key/value rows (and biases) of the
 * pruned heads go, and so do the matching input columns of the attention output dense. What
 * stays is the model with those heads' attention probabilities multiplied by 0 (head mask),
 * with smaller matrix products.
 *
 * `keepHeads[l]` lists the 0-based heads of layer l (0-based) that stay, ascending.
 */
export type KeepHeads = readonly (readonly number[])[];

export function checkKeepHeads(config: BertConfig, keepHeads: KeepHeads): void {
  const L = config.numHiddenLayers;
  const heads = config.numAttentionHeads;
  const bad = (found: string) =>
    new InputError('kept-heads list does not fit the model', { expected: `${L} lists of ascending head indices 0..${heads - 1}`, found, fix: 'build it from a head mask with keepHeadsFromMask' });
  if (keepHeads.length !== L) throw bad(`${keepHeads.length} lists`);
  keepHeads.forEach((k, l) => {
    for (let i = 0; i < k.length; i++) {
      if (!Number.isInteger(k[i]) || k[i]! < 0 || k[i]! >= heads || (i > 0 && k[i]! <= k[i - 1]!)) throw bad(`layer ${l}: [${k.join(', ')}]`);
    }
  });
}

/** The heads a [L, heads] mask keeps (factor ≠ 0), per layer. */
export function keepHeadsFromMask(config: BertConfig, mask: ArrayLike<number>): number[][] {
  const heads = config.numAttentionHeads;
  return Array.from({ length: config.numHiddenLayers }, (_, l) => Array.from({ length: heads }, (_, h) => h).filter((h) => mask[l * heads + h] !== 0));
}

/** A copy of `weights` (untouched tensors shared) with the attention of each layer cut to its kept heads. */
export function pruneHeadWeights(config: BertConfig, weights: WeightMap, keepHeads: KeepHeads): WeightMap {
  checkKeepHeads(config, keepHeads);
  const H = config.hiddenSize;
  const d = H / config.numAttentionHeads;
  const out: WeightMap = new Map(weights);
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new InputError(`weight '${name}' is missing`, { expected: 'a BERT checkpoint under canonical names', found: 'nothing under that name', fix: 'load the model with loadModel' });
    return t;
  };
  keepHeads.forEach((kept, l) => {
    const p = `encoder.layer.${l}.attention`;
    const n = kept.length * d;
    for (const part of ['query', 'key', 'value']) {
      // [out = H, in = H] → rows of the kept heads; bias [H] → the same entries.
      const w = get(`${p}.self.${part}.weight`).data;
      const b = get(`${p}.self.${part}.bias`).data;
      const w2 = new Float32Array(n * H);
      const b2 = new Float32Array(n);
      kept.forEach((h, i) => {
        w2.set(w.subarray(h * d * H, (h + 1) * d * H), i * d * H);
        b2.set(b.subarray(h * d, (h + 1) * d), i * d);
      });
      out.set(`${p}.self.${part}.weight`, { data: w2, shape: [n, H] });
      out.set(`${p}.self.${part}.bias`, { data: b2, shape: [n] });
    }
    // Output dense [out = H, in = H] → the input columns of the kept heads.
    const o = get(`${p}.output.dense.weight`).data;
    const o2 = new Float32Array(H * n);
    for (let r = 0; r < H; r++) kept.forEach((h, i) => o2.set(o.subarray(r * H + h * d, r * H + (h + 1) * d), r * n + i * d));
    out.set(`${p}.output.dense.weight`, { data: o2, shape: [H, n] });
  });
  return out;
}
