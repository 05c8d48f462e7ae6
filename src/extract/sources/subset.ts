/**
 * The kept sentences of a split read from features that cover the whole split: structural-probes
 * writes one hdf5 dataset per sentence of its file, and a store may have been extracted from the
 * whole split, while a family drops some sentences (no valid tree, `--limit`). Sentence i of this
 * view is sentence `positions[i]` of the source.
 */
import type { ActivationSource } from '../request.js';

export function subsetSource(source: ActivationSource, positions: readonly number[]): ActivationSource {
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= source.numSentences) throw new RangeError(`subsetSource: position ${p} is outside 0..${source.numSentences - 1}`);
  }
  const at = (sentences: readonly number[]) => sentences.map((s) => {
    const p = positions[s];
    if (p === undefined) throw new RangeError(`sentence ${s} is outside 0..${positions.length - 1}`);
    return p;
  });
  return {
    numSentences: positions.length,
    hiddenSize: source.hiddenSize,
    numHeads: source.numHeads,
    layers: source.layers,
    attentionLayers: source.attentionLayers,
    rawAttentionLayers: source.rawAttentionLayers,
    wordCounts: positions.map((p) => source.wordCounts[p]!),
    hasPieces: source.hasPieces,
    description: { ...source.description, sentencesOfSource: `${positions.length} of ${source.numSentences} (the sentences the probe keeps)` },
    readWords: (layer, sentences, alloc) => source.readWords(layer, at(sentences), alloc),
    readPieces: (layer, sentences) => source.readPieces(layer, at(sentences)),
    readAttention: (layer, sentence) => source.readAttention(layer, at([sentence])[0]!),
    readRawAttention: (layer, sentence) => source.readRawAttention(layer, at([sentence])[0]!),
    hasAttention: (sentence) => source.hasAttention(at([sentence])[0]!),
    close: () => source.close(),
  };
}
