/**
 * An ActivationSource over word vectors already in memory (one Float32Array [words, hidden] per
 * sentence and layer): planted-structure tests, benchmarks, and callers that computed features
 * themselves. Reads copy the asked sentences in the order given, as a store's positional reads do.
 */
import type { ArrayTensor } from '../model/types.js';
import { wordArray, type ActivationSource, type PieceBatch } from './request.js';
import { MissingActivation } from './store.js';

export function memorySource(layers: ReadonlyMap<number, readonly Float32Array[]>, hidden: number): ActivationSource {
  const first = [...layers.values()][0];
  if (!first) throw new Error('memorySource: no layers');
  const wordCounts = first.map((v) => v.length / hidden);
  for (const [l, vs] of layers) {
    if (vs.length !== first.length) throw new Error(`memorySource: layer ${l} has ${vs.length} sentences, not ${first.length}`);
    vs.forEach((v, i) => {
      if (v.length !== wordCounts[i]! * hidden) throw new Error(`memorySource: layer ${l} sentence ${i} has ${v.length / hidden} words, not ${wordCounts[i]}`);
    });
  }
  const none = (what: string) => () => Promise.reject(new MissingActivation(`an in-memory activation source has no ${what}`));
  return {
    numSentences: first.length,
    hiddenSize: hidden,
    numHeads: 0,
    layers: [...layers.keys()].sort((a, b) => a - b),
    attentionLayers: [],
    rawAttentionLayers: [],
    wordCounts,
    hasPieces: false,
    description: { kind: 'memory', sentences: first.length, hidden },
    async readWords(layer: number, sentences: readonly number[], alloc?: (bytes: number) => ArrayBuffer): Promise<Float32Array> {
      const vs = layers.get(layer);
      if (!vs) throw new MissingActivation(`layer.${layer} is not in this in-memory activation source`);
      let total = 0;
      for (const s of sentences) total += vs[s]!.length;
      const out = wordArray(total, alloc);
      let at = 0;
      for (const s of sentences) {
        out.set(vs[s]!, at);
        at += vs[s]!.length;
      }
      return out;
    },
    readPieces: none('piece-level vectors') as () => Promise<PieceBatch>,
    readAttention: none('attention') as () => Promise<ArrayTensor>,
    readRawAttention: none('raw attention') as () => Promise<ArrayTensor>,
    hasAttention: () => false,
    close: async () => {},
  };
}
