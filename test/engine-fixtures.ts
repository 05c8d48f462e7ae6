import { join } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { readSafetensors } from '../src/model/safetensors.js';
import type { ArrayTensor, ForwardBatch, LoadedModel } from '../src/model/types.js';
import { fixturesDir } from './helpers.js';

/** The engines' test inputs: a fixture checkpoint as a LoadedModel, and its reference batch. */

export type FixtureName = 'tiny-bert' | 'tiny-bert-legacy-bin' | 'tiny-bert-model-only-f16';

const loaded = new Map<FixtureName, Promise<LoadedModel>>();

/**
 * A fixture checkpoint loaded the way the CLI loads it (loadModel on the folder, offline),
 * once per test process: engines only read the model.
 */
export function fixtureModel(name: FixtureName): Promise<LoadedModel> {
  let model = loaded.get(name);
  if (!model) loaded.set(name, (model = loadModel(join(fixturesDir, name), { offline: true })));
  return model;
}

export interface Reference {
  batch: ForwardBatch;
  tensors: Map<string, ArrayTensor>;
}

export function reference(file: 'tiny-bert-reference.safetensors' | 'tiny-bert-model-only-f16-reference.safetensors'): Reference {
  const main = readSafetensors(join(fixturesDir, 'tiny-bert-reference.safetensors'));
  const own = file === 'tiny-bert-reference.safetensors' ? main : readSafetensors(join(fixturesDir, file));
  const ids = main.tensors.get('input_ids')!;
  const [B, T] = ids.shape as [number, number];
  const batch: ForwardBatch = {
    batchSize: B,
    seqLen: T,
    inputIds: Int32Array.from(ids.data),
    attentionMask: Int32Array.from(main.tensors.get('attention_mask')!.data),
    tokenTypeIds: Int32Array.from(main.tensors.get('token_type_ids')!.data),
  };
  const tensors = new Map<string, ArrayTensor>();
  for (const [k, v] of own.tensors) tensors.set(k, { data: v.data, shape: v.shape });
  if (!tensors.has('head_mask')) tensors.set('head_mask', { data: main.tensors.get('head_mask')!.data, shape: main.tensors.get('head_mask')!.shape });
  return { batch, tensors };
}

/**
 * Largest |a - b| over positions whose attention_mask is 1 (padded rows are not meaningful).
 * `a`, `b` are [B, T, ...] (hidden states, logits) or, with `attention`, [B, heads, T, T] where
 * both the query row and the key column must be real tokens.
 */
export function maxDiffMasked(a: ArrayTensor, b: ArrayTensor, mask: Int32Array, seqLen: number, attention = false): number {
  if (a.data.length !== b.data.length) throw new Error(`size mismatch: [${a.shape}] vs [${b.shape}]`);
  let worst = 0;
  const B = a.shape[0]!;
  if (!attention) {
    const per = a.data.length / (B * seqLen);
    for (let i = 0; i < B * seqLen; i++) {
      if (!mask[i]) continue;
      for (let j = 0; j < per; j++) worst = Math.max(worst, Math.abs(a.data[i * per + j]! - b.data[i * per + j]!));
    }
    return worst;
  }
  const heads = a.shape[1]!;
  for (let bi = 0; bi < B; bi++)
    for (let h = 0; h < heads; h++)
      for (let q = 0; q < seqLen; q++) {
        if (!mask[bi * seqLen + q]) continue;
        for (let k = 0; k < seqLen; k++) {
          if (!mask[bi * seqLen + k]) continue;
          const idx = ((bi * heads + h) * seqLen + q) * seqLen + k;
          worst = Math.max(worst, Math.abs(a.data[idx]! - b.data[idx]!));
        }
      }
  return worst;
}

/** Logits at token positions 1 and 2 → [B, 2, vocab], as the reference stores them. */
export function positions12(logits: ArrayTensor): ArrayTensor {
  const [B, T, V] = logits.shape as [number, number, number];
  const out = new Float32Array(B * 2 * V);
  for (let b = 0; b < B; b++) for (let p = 0; p < 2; p++) out.set(logits.data.subarray((b * T + p + 1) * V, (b * T + p + 2) * V), (b * 2 + p) * V);
  return { data: out, shape: [B, 2, V] };
}
