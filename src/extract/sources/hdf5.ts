import type { Dataset as H5Dataset, File as H5File } from 'h5wasm/node';
import type { Corpus } from '../../corpus/types.js';
import type { ArrayTensor, Tokenizer } from '../../model/types.js';
import { InputError } from '../../util/errors.js';
import { layerName } from '../../util/names.js';
import { poolWords } from '../align.js';
import { wordArray, type ActivationSource, type PieceBatch } from '../request.js';
import { MissingActivation } from '../store.js';
import { structuralProbesAlignment } from './align-hdf5.js';

export interface Hdf5Options {
  /** Aligns a piece-level file's pieces to words (the model's vocab); required at piece level. */
  tokenizer?: Tokenizer;
  /**
   * Our layer index of the file's row 0 (default 0). structural-probes' convert_raw_to_bert.py
   * stores the 12 (24) layer outputs without the embeddings: pass 1 so `layer.N` is BERT layer N.
   */
  firstLayer?: number;
  /** Force the level instead of detecting it (tokens = words → word level). */
  level?: 'word' | 'piece';
  /**
   * Piece → word alignment at piece level: 'structural-probes' (default; their WordPiece-only
   * tokenization and ## matching, as data.py BERTDataset) or 'tokenizer' (this model's
   * tokenizer.encodeWords, i.e. BERT's basic tokenization then WordPiece, as `bert-probe extract`).
   */
  alignment?: 'structural-probes' | 'tokenizer';
  /**
   * The corpus is the first sentences of what the features cover (`--limit`): more sentences in
   * the features are allowed, and only the corpus's are checked and read.
   */
  allowLonger?: boolean;
}

type H5 = typeof import('h5wasm/node');
let h5: Promise<H5> | null = null;
async function loadH5(): Promise<H5> {
  h5 ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m;
  });
  return h5;
}

/** Sentences (numbered datasets) in a structural-probes hdf5 file, or null when it cannot be opened. */
export async function hdf5SentenceCount(path: string): Promise<number | null> {
  const m = await loadH5();
  let file: H5File;
  try {
    file = new m.File(path, 'r');
  } catch {
    return null;
  }
  try {
    return file.keys().filter((k) => /^\d+$/.test(k)).length;
  } finally {
    file.close();
  }
}

/**
 * structural-probes' hdf5 features (Hewitt & Manning 2019, github.com/john-hewitt/structural-probes):
 * one dataset per sentence, named by its 0-based index in the corpus file, shape
 * [layers, tokens, dim]. Tokens are words (their ELMo files; data.py ELMoDataset) or word
 * pieces with [CLS]/[SEP] (scripts/convert_raw_to_bert.py), averaged into words as data.py
 * `BERTDataset.generate_subword_embeddings_from_hdf5` does (np.mean over each word's pieces).
 * Read with h5wasm: each read is a hyperslab of one layer of one sentence, so memory is the batch.
 */
export class Hdf5Source implements ActivationSource {
  readonly numHeads = 0;
  readonly attentionLayers: readonly number[] = [];
  readonly rawAttentionLayers: readonly number[] = [];
  readonly layers: readonly number[];
  readonly hasPieces: boolean;
  readonly description: Record<string, unknown>;

  private constructor(
    private readonly file: H5File,
    private readonly path: string,
    readonly numSentences: number,
    readonly hiddenSize: number,
    readonly wordCounts: readonly number[],
    private readonly firstLayer: number,
    numFileLayers: number,
    readonly level: 'word' | 'piece',
    /** Piece level: per sentence, pieces and the offset of its word spans in `spans`. */
    private readonly pieceCounts: readonly number[],
    private readonly spanStart: Int32Array,
    private readonly spans: Int32Array,
    extra: Record<string, unknown>,
  ) {
    this.layers = [...Array(numFileLayers).keys()].map((i) => i + firstLayer);
    this.hasPieces = level === 'piece';
    this.description = { kind: 'structural-probes hdf5', file: path, level, layersInFile: numFileLayers, firstLayer, layers: this.layers.map(layerName), ...extra };
  }

  static async open(path: string, corpus: Corpus, opts: Hdf5Options = {}): Promise<Hdf5Source> {
    const m = await loadH5();
    let file: H5File;
    try {
      file = new m.File(path, 'r');
    } catch (err) {
      throw new InputError('cannot open the hdf5 file', { file: path, expected: 'an HDF5 file (structural-probes features)', found: (err as Error).message, fix: 'check the file (h5ls FILE)' });
    }
    try {
      return Hdf5Source.check(m, file, path, corpus, opts);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  private static check(m: H5, file: H5File, path: string, corpus: Corpus, opts: Hdf5Options): Hdf5Source {
    const N = corpus.sentences.length;
    const keys = file.keys();
    const numeric = keys.filter((k) => /^\d+$/.test(k));
    // allennlp's `elmo` command adds a `sentence_to_index` dataset; structural-probes reads only numeric keys.
    const ignored = keys.filter((k) => !/^\d+$/.test(k));
    const fix = `write one dataset per sentence of ${corpus.id}, named 0..${N - 1} in corpus order (structural-probes' layout)`;
    if (numeric.length !== N && !(opts.allowLonger && numeric.length > N)) {
      throw new InputError(`hdf5 file holds ${numeric.length} sentences; the corpus ${corpus.id} has ${N}`, { file: path, expected: `${N} datasets named 0..${N - 1}`, found: `${numeric.length} numbered datasets${ignored.length ? ` (and ${ignored.slice(0, 3).join(', ')})` : ''}`, fix });
    }
    const shapes: number[][] = [];
    let dtypeSize = 0;
    for (let s = 0; s < N; s++) {
      const ds = file.get(String(s));
      const sent = corpus.sentences[s]!;
      if (!ds || !(ds instanceof m.Dataset)) throw new InputError(`hdf5 file has no dataset '${s}' for sentence ${s} (${sent.id}, ${sent.source.file}:${sent.source.line})`, { file: path, expected: `a dataset '${s}' [layers, tokens, dim]`, found: ds ? 'a group' : 'nothing', fix });
      const shape = ds.shape ?? [];
      const md = ds.metadata;
      if (md.type !== 1 || (md.size !== 4 && md.size !== 8)) {
        throw new InputError(`hdf5 dataset '${s}' is not float32/float64`, { file: path, expected: 'float32 (h5py default) or float64', found: `${ds.dtype}`, fix: 'store features as float32' });
      }
      dtypeSize = md.size;
      if (shape.length !== 3 || (shapes.length > 0 && (shape[0] !== shapes[0]![0] || shape[2] !== shapes[0]![2]))) {
        throw new InputError(`hdf5 dataset '${s}' has the wrong shape`, { file: path, expected: shapes.length ? `[${shapes[0]![0]}, tokens, ${shapes[0]![2]}] like dataset '0'` : '[layers, tokens, dim]', found: `[${shape.join(', ')}]`, fix: 'every dataset must be [layers, tokens, dim] with the same layers and dim' });
      }
      shapes.push(shape);
    }
    const wordCounts = corpus.sentences.map((s) => s.words.length);
    const L = shapes[0]?.[0] ?? 0;
    const D = shapes[0]?.[2] ?? 0;
    const level = opts.level ?? (shapes.every((sh, s) => sh[1] === wordCounts[s]) ? 'word' : 'piece');
    const firstLayer = opts.firstLayer ?? 0;
    if (!Number.isInteger(firstLayer) || firstLayer < 0) throw new InputError(`bad first layer ${firstLayer}`, { expected: 'an integer >= 0 (our layer index of the file\'s row 0)', found: String(firstLayer) });
    const pieceCounts: number[] = [];
    const spanStart = new Int32Array(N + 1);
    let spans = new Int32Array(0);
    const alignment = opts.alignment ?? 'structural-probes';
    if (level === 'word') {
      for (let s = 0; s < N; s++) {
        if (shapes[s]![1] !== wordCounts[s]) {
          const sent = corpus.sentences[s]!;
          throw new InputError(`hdf5 dataset '${s}' has ${shapes[s]![1]} tokens; sentence ${s} (${sent.id}, ${sent.source.file}:${sent.source.line}) has ${wordCounts[s]} words`, { file: path, expected: `[${L}, ${wordCounts[s]}, ${D}] (word level)`, found: `[${shapes[s]!.join(', ')}]`, fix: 'compute the features from the same corpus file, one row per word' });
        }
      }
    } else {
      const tok = opts.tokenizer;
      if (!tok) throw new InputError('hdf5 file is at word-piece level: its pieces need a tokenizer to align to words', { file: path, expected: 'a model (--model) whose vocab wrote the file', found: `dataset '0' has ${shapes[0]?.[1]} tokens for ${wordCounts[0]} words`, fix: 'pass --model with the checkpoint that produced the features (e.g. bert-base-cased for convert_raw_to_bert.py base)' });
      spans = new Int32Array(wordCounts.reduce((a, b) => a + b, 0) * 2);
      for (let s = 0; s < N; s++) {
        const sent = corpus.sentences[s]!;
        const a = alignment === 'tokenizer' ? (() => { const e = tok.encodeWords(sent.words); return { pieces: e.ids.length, spans: e.wordSpans }; })() : structuralProbesAlignment(sent.words, tok);
        if (a.pieces !== shapes[s]![1]) {
          throw new InputError(`hdf5 dataset '${s}' has ${shapes[s]![1]} tokens; sentence ${s} (${sent.id}, ${sent.source.file}:${sent.source.line}) has ${a.pieces} word pieces with [CLS]/[SEP] (${alignment} alignment)`, { file: path, expected: `[${L}, ${a.pieces}, ${D}]`, found: `[${shapes[s]!.join(', ')}]`, fix: alignment === 'structural-probes' ? 'pass the --model whose vocab wrote the file, or the tokenizer alignment if the file was written with basic tokenization' : 'pass the --model whose tokenizer wrote the file' });
        }
        pieceCounts.push(a.pieces);
        spanStart[s + 1] = spanStart[s]! + a.spans.length;
        a.spans.forEach(([b, e], w) => spans.set([b, e], (spanStart[s]! + w) * 2));
      }
    }
    return new Hdf5Source(file, path, N, D, wordCounts, firstLayer, L, level, pieceCounts, spanStart, spans, {
      dtype: dtypeSize === 8 ? 'float64' : 'float32', ...(level === 'piece' ? { alignment, pooling: 'mean' } : {}), ...(ignored.length ? { ignoredDatasets: ignored } : {}),
    });
  }

  /** Word-level vectors; piece-level files averaged into words (data.py BERTDataset: np.mean over each word's pieces). */
  async readWords(layer: number, sentences: readonly number[], alloc?: (bytes: number) => ArrayBuffer): Promise<Float32Array> {
    const D = this.hiddenSize;
    const out = wordArray(sentences.reduce((a, s) => a + this.words(s), 0) * D, alloc);
    let at = 0;
    for (const s of sentences) {
      const rows = this.row(layer, s);
      if (this.level === 'word') out.set(rows, at * D);
      else poolWords(rows, D, this.spansOf(s), 'mean', out, at * D);
      at += this.wordCounts[s]!;
    }
    return out;
  }

  async readPieces(layer: number, sentences: readonly number[]): Promise<PieceBatch> {
    if (!this.hasPieces) throw new MissingActivation(`${this.path} is at word level: it has no word pieces`);
    const D = this.hiddenSize;
    const pieceCounts = sentences.map((s) => (this.words(s), this.pieceCounts[s]!));
    const vectors = new Float32Array(pieceCounts.reduce((a, b) => a + b, 0) * D);
    let at = 0;
    for (let i = 0; i < sentences.length; i++) {
      vectors.set(this.row(layer, sentences[i]!), at * D);
      at += pieceCounts[i]!;
    }
    return { vectors, pieceCounts, wordSpans: sentences.map((s) => this.spansOf(s)) };
  }

  async readAttention(layer: number): Promise<ArrayTensor> {
    throw new MissingActivation(`${this.path} holds hidden states only: no attention for layer ${layer}`);
  }

  async readRawAttention(layer: number): Promise<ArrayTensor> {
    return this.readAttention(layer);
  }

  hasAttention(): boolean {
    return false;
  }

  async close(): Promise<void> {
    this.file.close();
  }

  private words(s: number): number {
    if (!Number.isInteger(s) || s < 0 || s >= this.numSentences) throw new RangeError(`sentence ${s} is outside 0..${this.numSentences - 1}`);
    return this.wordCounts[s]!;
  }

  private spansOf(s: number): [number, number][] {
    const out: [number, number][] = [];
    for (let w = this.spanStart[s]!; w < this.spanStart[s + 1]!; w++) out.push([this.spans[2 * w]!, this.spans[2 * w + 1]!]);
    return out;
  }

  /** One layer of one sentence, [tokens, dim] (a hyperslab read). */
  private row(layer: number, s: number): Float32Array {
    this.words(s);
    const li = layer - this.firstLayer;
    if (!this.layers.includes(layer)) throw new MissingActivation(`${this.path} has no ${layerName(layer)} (it has ${this.layers.map(layerName).join(', ')}; file row 0 is ${layerName(this.firstLayer)})`);
    const ds = this.file.get(String(s)) as H5Dataset;
    const data = ds.slice([[li, li + 1], [], []]);
    if (data instanceof Float32Array) return data;
    return Float32Array.from(data as ArrayLike<number>);
  }
}
