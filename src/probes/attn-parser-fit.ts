/**
 * Training and scoring of Clark et al.'s Attn-only parser (src/probes/attn-parser.ts) on the
 * shared trainer: Adam with lr 0.002 and one sentence per batch as the authors
 * (`Syntax_Analysis.ipynb` lines 542, 565); they train one epoch, we default to one and allow
 * more with early stopping on dev UAS. Sentences stream from the activations (one sentence's maps
 * at a time), so memory does not grow with the corpus.
 */
import type { Sentence } from '../corpus/types.js';
import type { FromPieces } from '../extract/align.js';
import { mulberry32, shuffled } from '../util/random.js';
import { attnParser, parserFeeds, parserMapCount, parserPredictions, parserUas, type ParserSentence } from './attn-parser.js';
import type { AttentionReader, PieceTokenizer } from './heads-compute.js';
import { compileProbe, initParams } from './probe-model.js';
import { sentenceWordMaps } from './relations-compute.js';
import { trainProbe, type Batch } from './trainer.js';

export interface ParserSplit {
  sentences: readonly Sentence[];
  reader: AttentionReader;
}

export interface ParserFitOptions {
  layers: readonly number[];
  transpose: boolean;
  fromPieces: FromPieces;
  tokenizer: PieceTokenizer | null;
  seed: number;
  epochs?: number;
  learningRate?: number;
  batchSize?: number;
  device?: 'cpu' | 'cuda';
  onEpoch?: (epoch: number, devUas: number) => void;
}

export interface ParserFit {
  maps: number;
  uas: number;
  correct: number;
  total: number;
  devUas: number;
  epochs: number;
  /** Per test sentence: predicted heads (0 = ROOT). */
  predictions: { sentence: number; heads: number[] }[];
  params: { names: string[]; shapes: number[][]; values: Float32Array[] };
  /** The learned weight of each map: k = layer position · H + head, transposes after. */
  weights: Float32Array;
  root: [number, number];
}

async function parserSentence(split: ParserSplit, s: number, o: ParserFitOptions): Promise<ParserSentence> {
  const sent = split.sentences[s]!;
  const maps = await sentenceWordMaps(split.reader, o.tokenizer, o.layers, s, sent.words, o.fromPieces);
  return { n: sent.words.length, maps, heads: sent.heads!, scored: sent.deprels!.map((r) => r !== 'punct') };
}

async function* batches(split: ParserSplit, order: readonly number[], o: ParserFitOptions, H: number): AsyncIterable<Batch & { batch: ParserSentence[]; ids: number[] }> {
  const bs = o.batchSize ?? 1;
  for (let k = 0; k < order.length; k += bs) {
    const ids = order.slice(k, k + bs);
    const batch = await Promise.all(ids.map((s) => parserSentence(split, s, o)));
    const { feeds, count } = parserFeeds(batch, H, o.transpose);
    yield { feeds, count, batch, ids };
  }
}

const usable = (split: ParserSplit): number[] => split.sentences.map((_, i) => i).filter((i) => split.reader.hasAttention(i));

export async function fitAttnParser(train: ParserSplit, dev: ParserSplit, test: ParserSplit, o: ParserFitOptions): Promise<ParserFit> {
  const H = train.reader.numHeads;
  const M = parserMapCount(o.layers.length, H, o.transpose);
  const def = attnParser(M);
  const probe = await compileProbe(def, { device: o.device });
  try {
    const params = initParams(def, o.seed);
    const trainIds = usable(train);
    const devIds = usable(dev);
    const score = async (split: ParserSplit, ids: number[], p: Float32Array[], keep?: ParserFit['predictions']) => {
      let correct = 0;
      let total = 0;
      for await (const b of batches(split, ids, { ...o, batchSize: 8 }, H)) {
        const out = await probe.predict(p, b.feeds);
        const preds = parserPredictions(out.logits!.data, b.batch);
        const u = parserUas(preds, b.batch);
        correct += u.correct;
        total += u.total;
        if (keep) preds.forEach((pr, k) => keep.push({ sentence: b.ids[k]!, heads: [...pr] }));
      }
      return { correct, total, uas: total ? correct / total : Number.NaN };
    };
    let epochsRun = 0;
    const result = await trainProbe({
      probe,
      params,
      train: (epoch) => {
        epochsRun = epoch + 1;
        return batches(train, shuffled(trainIds, mulberry32((o.seed + 104729 * (epoch + 1)) >>> 0)), o, H);
      },
      dev: () => batches(dev, devIds, { ...o, batchSize: 8 }, H),
      learningRate: o.learningRate ?? 0.002,
      maxEpochs: o.epochs ?? 1,
      patience: 2,
      seed: o.seed,
      select: async (p) => {
        const u = (await score(dev, devIds, p)).uas;
        o.onEpoch?.(epochsRun, u);
        return u;
      },
    });
    const devUas = result.history[result.bestEpoch]?.metric ?? Number.NaN;
    const predictions: ParserFit['predictions'] = [];
    const t = await score(test, usable(test), params, predictions);
    return {
      maps: M,
      uas: t.uas,
      correct: t.correct,
      total: t.total,
      devUas,
      epochs: result.epochs,
      predictions,
      params: { names: def.params.map((p) => p.name), shapes: def.params.map((p) => p.shape), values: params },
      weights: params[0]!,
      root: [params[1]![0]!, params[1]![1]!],
    };
  } finally {
    await probe.dispose();
  }
}
