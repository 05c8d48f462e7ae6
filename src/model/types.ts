/**
 * The model side of the data flow (DESIGN.md): config, tokenizer and weights in, and the
 * Engine contract every engine (tfjs, onnx) implements.
 */

/** config.json of a BERT-family checkpoint, validated (see config.ts). */
export interface BertConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: 'gelu';
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  positionEmbeddingType: 'absolute';
  architectures: string[];
}

/** A dense float32 array with its shape, row-major. Engines return these, not framework tensors. */
export interface ArrayTensor {
  data: Float32Array;
  shape: number[];
}

/**
 * Weights under canonical names: Hugging Face BertModel names without a prefix
 * (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, ...,
 * `pooler.dense.weight`) plus the MLM head as `cls.predictions.transform.dense.weight`,
 * `cls.predictions.transform.LayerNorm.weight|bias`, `cls.predictions.bias`,
 * `cls.predictions.decoder.weight` (tied to word embeddings when absent). Always float32 in
 * memory; `sourceDtype` says what the file held.
 */
export type WeightMap = Map<string, ArrayTensor>;

export interface ModelSource {
  /** What the user asked for: a hub id, a path, or `random[:CONFIG]`. */
  id: string;
  /** Folder the files were read from (a snapshot folder for hub models); null for random. */
  path: string | null;
  revision?: string;
  /** sha256 over the weight files' bytes, in name order (for random: over seed + config). */
  weightsSha256: string;
  format: 'safetensors' | 'pytorch' | 'random';
  sourceDtype: 'F32' | 'F16' | 'BF16';
  /** True for the random-init control; every output labels it "random-init". */
  randomInit: boolean;
  /** Why the weights are random (asked for with --model random, or the default model could not be loaded); absent otherwise. */
  randomInitReason?: string;
}

/** Word pieces of one sentence, with [CLS] at 0 and [SEP] last. */
export interface Encoding {
  tokens: string[];
  ids: number[];
  /** For every input word, [start, end) of its pieces in `tokens` (so start >= 1). */
  wordSpans: [number, number][];
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly maskId: number;
  readonly unkId: number;
  /** Stable description for caches and manifests (kind, lower-casing, vocab sha256). */
  readonly fingerprint: string;
  /** Raw text: BERT's BasicTokenizer splitting, then WordPiece. */
  encodeText(text: string): Encoding;
  /** Pre-split words (treebanks): each word becomes one or more pieces, spans kept. */
  encodeWords(words: readonly string[]): Encoding;
  idToToken(id: number): string;
  tokenToId(token: string): number | undefined;
}

export interface LoadedModel {
  source: ModelSource;
  config: BertConfig;
  tokenizer: Tokenizer;
  weights: WeightMap;
  hasMlmHead: boolean;
}

/** One padded batch, row-major [batchSize, seqLen]. */
export interface ForwardBatch {
  batchSize: number;
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  /** [numLayers, numHeads]; multiplies the attention probabilities (HF head_mask). */
  headMask?: Float32Array;
}

/** What the caller wants back, so engines and extraction keep only that. */
export interface OutputFilter {
  /** Hidden-state indices 0..L to return (0 = embeddings). Default: all. */
  hiddenStates?: number[];
  /** Attention layers 1..L to return. Default: all. Empty: none. */
  attentions?: number[];
  /** Return MLM logits (needs an MLM head). */
  mlmLogits?: boolean;
  /**
   * Only at these flat positions (b · seqLen + t): mlmLogits is then [positions, vocab], in
   * this order. A masked-LM loss needs a few rows of a [B, T, vocab] array.
   */
  mlmPositions?: Int32Array;
}

export interface ForwardOutput {
  /** Indexed by hidden-state index 0..L; entries not asked for are undefined. Each [B,T,H]. */
  hiddenStates: (ArrayTensor | undefined)[];
  /** Indexed by layer 0..L-1 (layer N is index N-1); each [B,heads,T,T]. */
  attentions: (ArrayTensor | undefined)[];
  /** [B,T,vocab] when asked for; [positions, vocab] with OutputFilter.mlmPositions. */
  mlmLogits?: ArrayTensor;
}

/**
 * Numeric precision of an engine's forward pass (`--precision`): fp32, or int8 dynamic
 * quantisation of the linear layers (onnx engine only; src/model/onnx-graph.ts).
 */
export type Precision = 'fp32' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

export interface Engine {
  readonly kind: 'tfjs' | 'onnx';
  /** Absent: fp32. */
  readonly precision?: Precision;
  /** e.g. 'wasm', 'cpu', 'tensorflow', 'tensorflow-cuda', 'onnxruntime-cpu', 'onnxruntime-cuda'. */
  readonly backend: string;
  readonly config: BertConfig;
  forward(batch: ForwardBatch, want?: OutputFilter): Promise<ForwardOutput>;
  dispose(): Promise<void>;
}
