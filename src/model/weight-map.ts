import { InputError } from '../util/errors.js';
import type { LoadedTensor } from './safetensors.js';
import type { BertConfig, WeightMap } from './types.js';
import { canonicalWeights, MLM_DECODER, WORD_EMBEDDINGS } from './weight-names.js';

/**
 * Checkpoint names → canonical BertModel names (see WeightMap), for every common layout:
 * BertModel (no prefix), BertForMaskedLM / BertForPreTraining (`bert.` prefix, MLM head
 * `cls.predictions.*`, decoder tied to the word embeddings), the original TF-converted
 * checkpoints' `LayerNorm.gamma/beta`. Task heads that probing does not use (NSP
 * `cls.seq_relationship.*`, `classifier.*`, `qa_outputs.*`) and buffers (`position_ids`) are
 * dropped; anything else unexpected, anything missing, and every shape mismatch is an
 * InputError naming the tensors.
 */

const IGNORED = [/^cls\.seq_relationship\./, /^classifier\./, /^qa_outputs\./, /(^|\.)position_ids$/, /(^|\.)token_type_ids$/];

export function canonicalName(name: string): string {
  let n = name;
  if (n.startsWith('bert.')) n = n.slice('bert.'.length);
  n = n.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');
  // Newer transformers also save the decoder bias (tied to cls.predictions.bias).
  if (n === 'cls.predictions.decoder.bias') n = 'cls.predictions.bias';
  return n;
}

function listNames(names: string[]): string {
  return names.length <= 6 ? names.join(', ') : `${names.slice(0, 6).join(', ')} and ${names.length - 6} more`;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface CanonicalWeights {
  weights: WeightMap;
  hasMlmHead: boolean;
  hasPooler: boolean;
}

/**
 * Map and check a checkpoint's tensors against `config`. `file` names the weights file(s)
 * for errors; `fileOf` tells which file held a tensor (sharded checkpoints).
 */
export function canonicalize(raw: Map<string, LoadedTensor>, config: BertConfig, file: string, fileOf: (name: string) => string = () => file): CanonicalWeights {
  const weights: WeightMap = new Map();
  const origin = new Map<string, string>();
  const unexpected: string[] = [];
  const specs = canonicalWeights(config);
  const byName = new Map(specs.map((s) => [s.name, s]));
  for (const [name, t] of raw) {
    if (IGNORED.some((re) => re.test(name))) continue;
    const canon = canonicalName(name);
    if (canon === MLM_DECODER) {
      weights.set(canon, { data: t.data, shape: t.shape });
      origin.set(canon, name);
      continue;
    }
    if (!byName.has(canon)) {
      unexpected.push(name);
      continue;
    }
    if (weights.has(canon) && canon === 'cls.predictions.bias') continue; // both decoder.bias and bias: same tensor
    weights.set(canon, { data: t.data, shape: t.shape });
    origin.set(canon, name);
  }
  if (unexpected.length > 0) {
    throw new InputError(`unexpected tensors in the checkpoint: ${listNames(unexpected)}`, {
      file,
      expected: `the tensors of a BertModel with ${config.numHiddenLayers} layers (optionally with bert. prefix, MLM/NSP heads)`,
      found: listNames(unexpected),
      fix: 'check that config.json matches the weights (num_hidden_layers, model_type), or that this is a BERT checkpoint',
    });
  }
  for (const spec of specs) {
    const t = weights.get(spec.name);
    if (!t) continue;
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      const name = origin.get(spec.name)!;
      throw new InputError(`tensor '${name}' has the wrong shape`, {
        file: fileOf(name),
        expected: `[${spec.shape.join(', ')}] (from config.json: hidden_size ${config.hiddenSize}, intermediate_size ${config.intermediateSize}, vocab_size ${config.vocabSize})`,
        found: `[${t.shape.join(', ')}]`,
        fix: 'use the config.json that belongs to these weights',
      });
    }
  }
  const missing = specs.filter((s) => !s.mlm && !s.pooler && !weights.has(s.name)).map((s) => s.name);
  const mlmPresent = specs.filter((s) => s.mlm && weights.has(s.name));
  const mlmMissing = specs.filter((s) => s.mlm && !weights.has(s.name)).map((s) => s.name);
  if (mlmPresent.length > 0) missing.push(...mlmMissing);
  const poolerPresent = specs.some((s) => s.pooler && weights.has(s.name));
  if (poolerPresent) missing.push(...specs.filter((s) => s.pooler && !weights.has(s.name)).map((s) => s.name));
  if (missing.length > 0) {
    throw new InputError(`tensors missing from the checkpoint: ${listNames(missing)}`, {
      file,
      expected: `every tensor of a BertModel with ${config.numHiddenLayers} layers`,
      found: `${raw.size} tensors, without ${listNames(missing)}`,
      fix: 'the weights file is incomplete or belongs to another architecture; download the checkpoint again',
    });
  }
  const decoder = weights.get(MLM_DECODER);
  if (decoder) {
    const word = weights.get(WORD_EMBEDDINGS)!;
    if (decoder.shape.join() !== word.shape.join()) {
      throw new InputError(`tensor '${origin.get(MLM_DECODER)}' has the wrong shape`, { file: fileOf(origin.get(MLM_DECODER)!), expected: `[${word.shape.join(', ')}] like the word embeddings`, found: `[${decoder.shape.join(', ')}]`, fix: 'use the config.json that belongs to these weights' });
    }
    // Tied (the usual case): keep one copy; engines use the word embeddings when the decoder is absent.
    if (sameValues(decoder.data, word.data)) weights.delete(MLM_DECODER);
    if (mlmPresent.length === 0) weights.delete(MLM_DECODER);
  }
  return { weights, hasMlmHead: mlmPresent.length > 0, hasPooler: poolerPresent };
}
