/**
 * Test-only stand-ins for the model side (engineer 1/2's real ones are tested elsewhere): a
 * tokenizer that cuts words into pieces of up to 3 characters, and an engine whose outputs are
 * simple known functions of the ids and positions, so pooling, attention conversion, windowing
 * and batching can be checked against values computed by hand.
 */
import type { BertConfig, Encoding, Engine, ForwardBatch, ForwardOutput, LoadedModel, OutputFilter, Tokenizer } from '../src/model/types.js';
import type { Corpus, Sentence } from '../src/corpus/types.js';

export const PAD = 0, UNK = 100, CLS = 101, SEP = 102, MASK = 103;

export class FakeTokenizer implements Tokenizer {
  readonly vocabSize = 5000;
  readonly clsId = CLS;
  readonly sepId = SEP;
  readonly padId = PAD;
  readonly maskId = MASK;
  readonly unkId = UNK;
  readonly fingerprint: string;
  private vocab = new Map<string, number>();
  private rev = new Map<number, string>([[CLS, '[CLS]'], [SEP, '[SEP]'], [PAD, '[PAD]'], [UNK, '[UNK]'], [MASK, '[MASK]']]);
  constructor(readonly pieceLen = 3) {
    this.fingerprint = `fake-${pieceLen}char`;
  }
  private id(piece: string): number {
    let id = this.vocab.get(piece);
    if (id === undefined) {
      // deterministic id from the characters, independent of call order
      let h = 7;
      for (const ch of piece) h = (h * 31 + ch.codePointAt(0)!) % 4000;
      id = 1000 + h;
      this.vocab.set(piece, id);
      this.rev.set(id, piece);
    }
    return id;
  }
  encodeWords(words: readonly string[]): Encoding {
    const tokens = ['[CLS]'];
    const ids = [CLS];
    const wordSpans: [number, number][] = [];
    for (const w of words) {
      const start = tokens.length;
      for (let i = 0; i < w.length; i += this.pieceLen) {
        const p = (i ? '##' : '') + w.slice(i, i + this.pieceLen).toLowerCase();
        tokens.push(p);
        ids.push(this.id(p));
      }
      wordSpans.push([start, tokens.length]);
    }
    tokens.push('[SEP]');
    ids.push(SEP);
    return { tokens, ids, wordSpans };
  }
  encodeText(text: string): Encoding {
    return this.encodeWords(text.split(/\s+/).filter(Boolean));
  }
  idToToken(id: number): string {
    return this.rev.get(id) ?? '[UNK]';
  }
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }
}

export function fakeConfig(over: Partial<BertConfig> = {}): BertConfig {
  return {
    modelType: 'bert', vocabSize: 5000, hiddenSize: 8, numHiddenLayers: 3, numAttentionHeads: 2, intermediateSize: 16,
    hiddenAct: 'gelu', maxPositionEmbeddings: 64, typeVocabSize: 2, layerNormEps: 1e-12, padTokenId: 0,
    positionEmbeddingType: 'absolute', architectures: ['BertModel'], ...over,
  };
}

/** Hidden state l at position t of a sequence: value of a known function of (id, t, l, h). */
export function fakeHidden(id: number, t: number, l: number, h: number): number {
  return Math.fround(Math.sin(0.001 * id * (h + 1) + 0.1 * l) + 0.01 * t);
}

/** Attention of layer l (1-based), head h, from r to c among n real tokens: softmax over c of (r+1)(c+1)(h+1)/(10 n) + l c / n. */
export function fakeAttentionRow(l: number, h: number, r: number, n: number): Float64Array {
  const z = new Float64Array(n);
  let sum = 0;
  for (let c = 0; c < n; c++) sum += z[c] = Math.exp(((r + 1) * (c + 1) * (h + 1)) / (10 * n) + (l * c) / n);
  for (let c = 0; c < n; c++) z[c]! /= sum;
  return z;
}

export class FakeEngine implements Engine {
  readonly kind = 'tfjs' as const;
  readonly backend = 'fake';
  calls = 0;
  sentencesSeen = 0;
  constructor(readonly config: BertConfig, private delayMs = 0) {}
  async forward(batch: ForwardBatch, want: OutputFilter = {}): Promise<ForwardOutput> {
    this.calls++;
    this.sentencesSeen += batch.batchSize;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const { batchSize: B, seqLen: T } = batch;
    const H = this.config.hiddenSize, L = this.config.numHiddenLayers, A = this.config.numAttentionHeads;
    if (T > this.config.maxPositionEmbeddings) throw new Error(`sequence of ${T} > ${this.config.maxPositionEmbeddings} positions`);
    const hiddenStates: ForwardOutput['hiddenStates'] = [];
    for (const l of want.hiddenStates ?? [...Array(L + 1).keys()]) {
      const data = new Float32Array(B * T * H);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) data[(b * T + t) * H + h] = batch.attentionMask[b * T + t] ? fakeHidden(batch.inputIds[b * T + t]!, t, l, h) : 99;
      hiddenStates[l] = { data, shape: [B, T, H] };
    }
    const attentions: ForwardOutput['attentions'] = [];
    for (const l of want.attentions ?? [...Array(L).keys()].map((i) => i + 1)) {
      const data = new Float32Array(B * A * T * T);
      for (let b = 0; b < B; b++) {
        let n = 0;
        for (let t = 0; t < T; t++) n += batch.attentionMask[b * T + t]!;
        for (let h = 0; h < A; h++) for (let r = 0; r < T; r++) {
          const row = fakeAttentionRow(l, h, Math.min(r, n - 1), n);
          for (let c = 0; c < n; c++) data[((b * A + h) * T + r) * T + c] = row[c]!;
        }
      }
      attentions[l - 1] = { data, shape: [B, A, T, T] };
    }
    return { hiddenStates, attentions };
  }
  async dispose(): Promise<void> {}
}

export function fakeModel(id = 'fake-model', sha = 'a'.repeat(64), config = fakeConfig()): LoadedModel {
  return {
    source: { id, path: null, weightsSha256: sha, format: 'random', sourceDtype: 'F32', randomInit: true },
    config, tokenizer: new FakeTokenizer(), weights: new Map(), hasMlmHead: false,
  };
}

/** A corpus of `n` deterministic sentences (varied lengths), plus optional extra sentences. */
export function fakeCorpus(n: number, extra: string[][] = [], id = 'fake-corpus'): Corpus {
  const lex = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'extraordinarily', 'blue', 'x', 'unbelievable', 'dogs', 'ran'];
  const sentences: Sentence[] = [];
  for (let i = 0; i < n; i++) {
    const len = 1 + ((i * 7) % 11);
    sentences.push({ id: `s${i}`, source: { file: 'fake', line: i + 1 }, words: Array.from({ length: len }, (_, j) => lex[(i * 3 + j * 5) % lex.length]!) });
  }
  extra.forEach((words, j) => sentences.push({ id: `x${j}`, source: { file: 'fake', line: n + j + 1 }, words }));
  return { id, format: 'fake', sha256: `sha-of-${id}-${sentences.length}`, files: [], sentences, skipped: {}, warnings: [] };
}
