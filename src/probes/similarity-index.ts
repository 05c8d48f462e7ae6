/**
 * A corpus encoded once into sentence vectors (sentence-vectors.ts) and kept in the cache, so
 * later queries and evaluations run no forward pass over it: one safetensors file per identity
 * (model weights, tokenizer, corpus, pooling, layers), tensors `layer.N` [sentences, D], unit
 * rows. Written to a temporary name and renamed (writeSafetensors), so a file that exists is
 * complete.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Corpus } from '../corpus/types.js';
import { readSafetensors, writeSafetensors } from '../model/safetensors.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { layerName } from '../util/names.js';
import { cacheDir } from '../util/paths.js';
import { normalizeRows, sentenceVectors, vectorSize, type SentencePooling } from './sentence-vectors.js';

export interface IndexIdentity {
  model: { id: string; weightsSha256: string };
  tokenizer: string;
  corpus: { id: string; sha256: string; sentences: number };
  pooling: SentencePooling;
  excludeSpecial: boolean;
  layers: number[];
}

export interface SimilarityIndex {
  identity: IndexIdentity;
  dim: number;
  /** layer → unit-normalised [sentences, dim]. */
  vectors: Map<number, Float32Array>;
  file: string;
  /** True when read from the cache (no forward pass ran). */
  reused: boolean;
}

export const sentenceText = (s: Corpus['sentences'][number]): string => s.text ?? s.words.join(' ');

export function indexFile(identity: IndexIdentity): string {
  const key = createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 20);
  return join(cacheDir('similar'), `${key}.safetensors`);
}

export async function buildOrLoadIndex(
  model: LoadedModel,
  corpus: Corpus,
  opts: { layers: number[]; pooling: SentencePooling; excludeSpecial: boolean; batchSize: number; engine: () => Promise<Engine>; onBatch?: (n: number) => void },
): Promise<SimilarityIndex> {
  const identity: IndexIdentity = {
    model: { id: model.source.id, weightsSha256: model.source.weightsSha256 },
    tokenizer: model.tokenizer.fingerprint,
    corpus: { id: corpus.id, sha256: corpus.sha256, sentences: corpus.sentences.length },
    pooling: opts.pooling,
    excludeSpecial: opts.excludeSpecial,
    layers: [...opts.layers].sort((a, b) => a - b),
  };
  const file = indexFile(identity);
  const dim = vectorSize(model.config.hiddenSize, opts.pooling);
  if (existsSync(file)) {
    const { tensors, metadata } = readSafetensors(file);
    if (metadata.identity === JSON.stringify(identity)) {
      return { identity, dim, file, reused: true, vectors: new Map(identity.layers.map((l) => [l, tensors.get(layerName(l))!.data])) };
    }
  }
  const engine = await opts.engine();
  const raw = await sentenceVectors(engine, model, corpus.sentences.map(sentenceText), { layers: identity.layers, pooling: opts.pooling, excludeSpecial: opts.excludeSpecial, batchSize: opts.batchSize, onBatch: opts.onBatch });
  for (const m of raw.values()) normalizeRows(m, dim);
  writeSafetensors(file, Object.fromEntries(identity.layers.map((l) => [layerName(l), { dtype: 'F32' as const, shape: [corpus.sentences.length, dim], data: raw.get(l)! }])), { identity: JSON.stringify(identity) });
  return { identity, dim, file, reused: false, vectors: raw };
}
