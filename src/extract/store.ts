import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ArrayTensor, Precision } from '../model/types.js';
import { DTYPE_BYTES, LITTLE_ENDIAN, readInto, readSafetensorsHeader, safetensorsLayout, tensorBytes, toFloat32, writeSafetensors, type SafetensorsDtype, type SafetensorsHeader, type TensorToWrite } from '../model/safetensors.js';
import { acquireLock, AtomicFile, isTempName, processAlive } from '../util/atomic.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { attnName, layerName } from '../util/names.js';
import { cacheDir } from '../util/paths.js';
import { poolWords, type Pooling } from './align.js';
import { wordArray, type ActivationSource, type PieceBatch } from './request.js';

/**
 * The activation store: word-level model outputs of one corpus on disk, so every probe on the
 * same model and corpus reads them instead of running the model again.
 *
 * Layout of a store folder:
 *   index.json                          identity, shapes, sentence → shard/offset map (below)
 *   layer.N/shard-00000.safetensors     tensor `vectors` [words of the shard's sentences, hidden]
 *                                       (F32 or F16) and `word_counts` I32 [sentences]
 *   attn.N/shard-00000.safetensors      one tensor `sentence.I` [heads, W+2, W+2] per sentence
 *                                       that fit the model (I = index within this store);
 *                                       word-level attention, [CLS] = 0, [SEP] = W+1
 *   rawattn.N/shard-00000.safetensors   the same at piece level [heads, P, P] (ActivationRequest.rawAttention)
 *   pieces.N/shard-00000.safetensors    hidden state N at piece level (ActivationRequest.level 'piece'):
 *                                       `vectors` [pieces incl. [CLS]/[SEP], hidden], `piece_counts`
 *                                       I32 [sentences], `word_spans` I32 [words, 2] (from [CLS] = 0)
 * A shard holds `shardSize` consecutive sentences. Every file is written to a temporary name
 * and renamed (util/atomic.ts), so a shard file that exists is complete; resuming recomputes
 * exactly the shards whose files are missing. Python: `safetensors.numpy.load_file(path)`.
 */
export const STORE_FORMAT = 'bert-probe-activations';
export const STORE_VERSION = 1;
export const INDEX_FILE = 'index.json';

/** Everything that makes two stores' contents different; a store is reused only when all match. */
export interface StoreIdentity {
  model: { id: string; weightsSha256: string; randomInit: boolean };
  corpus: { id: string; sha256: string; sentences: number };
  tokenizer: string;
  pooling: Pooling;
  dtype: 'float32' | 'float16';
  /** Forward-pass precision (`--precision`, src/model/types.ts Precision). */
  precision: Precision;
  maxPositions: number;
  /** Windows for long sentences (windows.ts): pieces per window and stride. */
  window: { content: number; stride: number };
  /** Which 1/N of the corpus (1-based index); {1, 1} for the whole corpus. */
  shard: { index: number; count: number };
}

export interface StoreIndex {
  format: typeof STORE_FORMAT;
  version: number;
  identity: StoreIdentity;
  hiddenSize: number;
  numHeads: number;
  numLayers: number;
  /** Hidden-state indices stored (0 = embeddings), attention layers (1-based) stored. */
  layers: number[];
  attentionLayers: number[];
  rawAttentionLayers: number[];
  /** Hidden-state indices stored at piece level (`pieces.N/`; request level 'piece'). */
  pieceLayers?: number[];
  shardSize: number;
  /** Corpus index of this store's first sentence, and how many it holds. */
  firstSentence: number;
  numSentences: number;
  sentenceIds: string[];
  wordCounts: number[];
  pieceCounts: number[];
  /** Per sentence: [shard, word offset within the shard]. */
  sentenceMap: [number, number][];
  shards: { file: string; firstSentence: number; sentences: number; words: number }[];
  /** Store-local indices of sentences longer than maxPositions (hidden states by windows, no attention). */
  windowed: number[];
  /** Words whose tokenization gave no piece (their vectors are zeros). */
  emptyWords: number;
  createdAt: string;
  updatedAt: string;
}

export function identityKey(identity: StoreIdentity): string {
  return createHash('sha256').update(stableJson(identity)).digest('hex').slice(0, 16);
}

export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-60) || 'x';

/** Default folder: cacheDir('activations', <model>-<corpus>-<hash of the identity>). */
export function defaultStoreDir(identity: StoreIdentity): string {
  const shard = identity.shard.count > 1 ? `-shard${identity.shard.index}of${identity.shard.count}` : '';
  return cacheDir('activations', `${slug(identity.model.id)}-${slug(identity.corpus.id)}${shard}-${identityKey(identity)}`);
}

export const shardFile = (k: number): string => `shard-${String(k).padStart(5, '0')}.safetensors`;
export const rawAttnName = (layer: number): string => `rawattn.${layer}`;
/** Folder of piece-level hidden state N (every piece incl. [CLS]/[SEP]). */
export const piecesName = (layer: number): string => `pieces.${layer}`;

/** The contiguous block of corpus sentences that `--shard K/N` takes: [floor((K-1)S/N), floor(KS/N)). */
export function shardRange(total: number, shard: { index: number; count: number }): [number, number] {
  return [Math.floor(((shard.index - 1) * total) / shard.count), Math.floor((shard.index * total) / shard.count)];
}

export function readIndex(dir: string): StoreIndex | null {
  const p = join(dir, INDEX_FILE);
  if (!existsSync(p)) return null;
  let raw: StoreIndex;
  try {
    raw = JSON.parse(readFileSync(p, 'utf8')) as StoreIndex;
  } catch (err) {
    throw new InputError('activation store index is not valid JSON', { file: p, expected: 'the index.json bert-probe extract writes', found: (err as Error).message, fix: 'delete the folder (or pass --force) and extract again' });
  }
  if (raw.format !== STORE_FORMAT || raw.version !== STORE_VERSION) {
    throw new InputError('not a bert-probe activation store (or another version)', { file: p, expected: `format ${STORE_FORMAT} version ${STORE_VERSION}`, found: `format ${String(raw.format)} version ${String(raw.version)}`, fix: 'point at a folder written by `bert-probe extract`, or extract again with --force' });
  }
  return completeIndex(raw as unknown as Record<string, unknown>, p);
}

/**
 * A store index as docs/store-format.md allows it to be written elsewhere: only `format`,
 * `version`, `hiddenSize`, `layers`, `wordCounts` and `shardSize` are required; the rest
 * (shard list, sentence map, identity, ...) is derived here the way `bert-probe extract` writes
 * it. Each field present is type-checked, so a hand-written index fails with its field named.
 */
export function completeIndex(raw: Record<string, unknown>, file: string): StoreIndex {
  const bad = (field: string, expected: string): never => {
    throw new InputError(`activation store index: bad '${field}'`, { file, expected, found: JSON.stringify(raw[field])?.slice(0, 120) ?? 'nothing', fix: 'see docs/store-format.md for the fields of index.json' });
  };
  const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
  const ints = (field: string, min = 0, required = true): number[] => {
    const v = raw[field];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v) || !v.every((x) => isInt(x, min))) bad(field, `an array of integers >= ${min}`);
    return v as number[];
  };
  if (!isInt(raw.hiddenSize, 1)) bad('hiddenSize', 'a positive integer (the vector width)');
  const layers = ints('layers');
  const wordCounts = ints('wordCounts');
  const numSentences = wordCounts.length;
  if (raw.numSentences !== undefined && raw.numSentences !== numSentences) bad('numSentences', `${numSentences} (the length of wordCounts)`);
  const pieceLayers = ints('pieceLayers', 0, false);
  const pieceCounts = ints('pieceCounts', 1, false);
  if (pieceLayers.length > 0 && pieceCounts.length !== numSentences) bad('pieceCounts', `${numSentences} piece counts (one per sentence; required with pieceLayers)`);
  let shards = raw.shards as StoreIndex['shards'] | undefined;
  let sentenceMap = raw.sentenceMap as StoreIndex['sentenceMap'] | undefined;
  const shardSize = raw.shardSize;
  if (!isInt(shardSize, 1)) bad('shardSize', 'a positive integer (sentences per shard file)');
  if (!shards || !sentenceMap) {
    // Shard k holds sentences [k·shardSize, (k+1)·shardSize), as the extraction pipeline writes them.
    shards = [];
    sentenceMap = [];
    for (let k = 0, s0 = 0; s0 < numSentences; k++, s0 += shardSize as number) {
      const m = Math.min(shardSize as number, numSentences - s0);
      let words = 0;
      for (let i = s0; i < s0 + m; i++) {
        sentenceMap.push([k, words]);
        words += wordCounts[i]!;
      }
      shards.push({ file: shardFile(k), firstSentence: s0, sentences: m, words });
    }
  }
  const model = typeof raw.model === 'string' ? raw.model : 'external';
  const pooling = raw.pooling ?? 'mean';
  if (!['mean', 'first', 'last'].includes(pooling as string)) bad('pooling', "'mean', 'first' or 'last'");
  const identity = (raw.identity as StoreIdentity | undefined) ?? {
    model: { id: model, weightsSha256: '', randomInit: false },
    corpus: { id: 'external', sha256: '', sentences: numSentences },
    tokenizer: '',
    pooling: pooling as Pooling,
    dtype: 'float32',
    precision: 'fp32',
    maxPositions: 0,
    window: { content: 0, stride: 0 },
    shard: { index: 1, count: 1 },
  };
  // Stores written before --precision existed were all fp32.
  identity.precision ??= 'fp32';
  return {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    identity,
    hiddenSize: raw.hiddenSize as number,
    numHeads: isInt(raw.numHeads) ? raw.numHeads : 0,
    numLayers: isInt(raw.numLayers) ? raw.numLayers : Math.max(0, ...layers),
    layers,
    attentionLayers: ints('attentionLayers', 1, false),
    rawAttentionLayers: ints('rawAttentionLayers', 1, false),
    pieceLayers,
    shardSize: shardSize as number,
    firstSentence: isInt(raw.firstSentence) ? raw.firstSentence : 0,
    numSentences,
    sentenceIds: Array.isArray(raw.sentenceIds) ? (raw.sentenceIds as string[]) : wordCounts.map((_, i) => String(i)),
    wordCounts,
    pieceCounts,
    sentenceMap,
    shards,
    windowed: ints('windowed', 0, false),
    emptyWords: isInt(raw.emptyWords) ? raw.emptyWords : 0,
    createdAt: typeof raw.createdAt === 'string' ? raw.createdAt : '',
    updatedAt: typeof raw.updatedAt === 'string' ? raw.updatedAt : '',
  };
}

/** Names the first identity field that differs, for the refusal message. */
export function identityDifference(a: StoreIdentity, b: StoreIdentity): { field: string; stored: string; wanted: string } | null {
  const fields: [string, (x: StoreIdentity) => unknown][] = [
    ['model', (x) => `${x.model.id} (weights sha256 ${x.model.weightsSha256.slice(0, 12)}${x.model.randomInit ? ', random-init' : ''})`],
    ['corpus', (x) => `${x.corpus.id} (sha256 ${x.corpus.sha256.slice(0, 12)}, ${x.corpus.sentences} sentences)`],
    ['tokenizer', (x) => x.tokenizer],
    ['pooling', (x) => x.pooling],
    ['dtype', (x) => x.dtype],
    ['precision', (x) => x.precision],
    ['max positions', (x) => x.maxPositions],
    ['windows', (x) => `${x.window.content} pieces, stride ${x.window.stride}`],
    ['shard', (x) => `${x.shard.index}/${x.shard.count}`],
  ];
  for (const [field, get] of fields) {
    const s = String(get(a));
    const w = String(get(b));
    if (s !== w) return { field, stored: s, wanted: w };
  }
  return stableJson(a) === stableJson(b) ? null : { field: 'identity', stored: stableJson(a), wanted: stableJson(b) };
}

/** Remove temporary files left by a killed writer (their process is gone). */
export function cleanStaleTemps(dir: string): number {
  let n = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      n += cleanStaleTemps(p);
      continue;
    }
    if (!isTempName(entry.name)) continue;
    const pid = Number(/\.(\d+)\.[0-9a-f]+\.tmp$/.exec(entry.name)?.[1]);
    if (pid && pid !== process.pid && processAlive(pid)) continue;
    rmSync(p, { force: true });
    n++;
  }
  return n;
}

/** The writer's lock inside a store folder (one writer per store; see lockStore). */
export const STORE_LOCK = '.bert-probe-store.lock';

/**
 * One writer per store folder at a time (two runs sharing a cache, or parallel jobs given one
 * --out): an exclusive lock file with our pid, as the Hub download lock (util/atomic.ts
 * acquireLock). A second writer waits and then finds the shards the first wrote; a lock left by
 * a dead process is taken over. Released at exit, including SIGINT/SIGTERM.
 */
export async function lockStore(dir: string, ui?: { info(m: string): void }): Promise<() => void> {
  return (await acquireLock(join(dir, STORE_LOCK), {
    onWait: (holder) => ui?.info(`waiting for another bert-probe (pid ${holder}) writing the activation store ${dir}`),
  })) as () => void;
}

/** Entries of a store folder other than our lock and temporary files (what makes it "not empty"). */
export function storeFolderEntries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((e) => e !== STORE_LOCK && !isTempName(e));
}

/** True when the shard file exists and its header is whole (a renamed file always is). */
export function shardDone(dir: string, name: string, k: number): boolean {
  const p = join(dir, name, shardFile(k));
  if (!existsSync(p)) return false;
  try {
    readSafetensorsHeader(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * One store file to write: where, its metadata, and its tensors in file order: `vectors` first
 * when the file has them (declared by shape only: they are streamed in, ShardFileWriter.writeRows),
 * then the small tensors given whole.
 */
export interface ShardFileSpec {
  path: string;
  vectors?: { dtype: 'F32' | 'F16'; shape: [number, number] };
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>;
  metadata: Record<string, string>;
}

const vectorDtype = (index: StoreIndex): 'F32' | 'F16' => (index.identity.dtype === 'float16' ? 'F16' : 'F32');

/** layer.N/shard-k: `vectors` [words of the shard, hidden] (streamed) and `word_counts` I32 [sentences]. */
export function layerShardFile(dir: string, index: StoreIndex, layer: number, k: number, wordCounts: number[]): ShardFileSpec {
  return {
    path: join(dir, layerName(layer), shardFile(k)),
    vectors: { dtype: vectorDtype(index), shape: [index.shards[k]!.words, index.hiddenSize] },
    tensors: { word_counts: { dtype: 'I32', shape: [wordCounts.length], data: Int32Array.from(wordCounts) } },
    metadata: { ...shardMeta(index, k), name: layerName(layer) },
  };
}

/**
 * Piece-level hidden states of shard k (request level 'piece'): `vectors` [Σ pieces, hidden]
 * (every piece incl. [CLS]/[SEP], sentences in order; streamed), `piece_counts` I32 [sentences]
 * and `word_spans` I32 [Σ words, 2], each word's [start, end) relative to its sentence's [CLS].
 */
export function pieceShardFile(dir: string, index: StoreIndex, layer: number, k: number, pieceCounts: number[], wordSpans: Int32Array): ShardFileSpec {
  return {
    path: join(dir, piecesName(layer), shardFile(k)),
    vectors: { dtype: vectorDtype(index), shape: [pieceCounts.reduce((a, b) => a + b, 0), index.hiddenSize] },
    tensors: {
      piece_counts: { dtype: 'I32', shape: [pieceCounts.length], data: Int32Array.from(pieceCounts) },
      word_spans: { dtype: 'I32', shape: [wordSpans.length / 2, 2], data: wordSpans },
    },
    metadata: { ...shardMeta(index, k), name: piecesName(layer) },
  };
}

export function attentionShardFile(dir: string, index: StoreIndex, name: string, k: number, perSentence: Map<number, { data: Float32Array; shape: number[] }>): ShardFileSpec {
  const tensors = new Map<string, TensorToWrite>();
  for (const [s, t] of [...perSentence.entries()].sort((a, b) => a[0] - b[0])) {
    tensors.set(`sentence.${s}`, { dtype: vectorDtype(index), shape: t.shape, data: t.data });
  }
  return { path: join(dir, name, shardFile(k)), tensors, metadata: { ...shardMeta(index, k), name } };
}

/**
 * A store file being written under its temporary name (util/atomic.ts AtomicFile): its head and
 * small tensors at open, then the rows of `vectors` as they come, in any order, straight to the
 * file, so a shard's vectors (13 layers x 20 MB for bert-base on PTB) are never held in memory;
 * `commit` makes it final. The bytes are those writeSafetensors writes for the same tensors.
 */
export class ShardFileWriter {
  private constructor(
    private readonly file: AtomicFile,
    private readonly vectorsAt: number,
    private readonly spec: ShardFileSpec,
  ) {}

  static open(spec: ShardFileSpec): ShardFileWriter {
    const small = spec.tensors instanceof Map ? [...spec.tensors.entries()] : Object.entries(spec.tensors);
    const layout = safetensorsLayout([...(spec.vectors ? [['vectors', spec.vectors] as [string, ShardFileSpec['vectors'] & object]] : []), ...small], spec.metadata);
    const file = AtomicFile.open(spec.path);
    let at = 0;
    for (const part of layout.head) {
      file.writeAt(part, at);
      at += part.byteLength;
    }
    for (const [name, t] of small) file.writeAt(tensorBytes(t), layout.dataStart + layout.ranges.get(name)![0]);
    return new ShardFileWriter(file, layout.dataStart + (spec.vectors ? layout.ranges.get('vectors')![0] : 0), spec);
  }

  /** Rows [row, row + data.length / width) of `vectors`. */
  writeRows(row: number, data: Float32Array): void {
    const v = this.spec.vectors!;
    if (data.length === 0) return;
    const bytes = tensorBytes({ dtype: v.dtype, shape: [data.length], data });
    this.file.writeAt(bytes, this.vectorsAt + row * v.shape[1] * DTYPE_BYTES[v.dtype]);
  }

  commit(): Promise<void> {
    return this.file.commit();
  }

  discard(): void {
    this.file.discard();
  }
}

/** Write one store file without streamed vectors now (temporary name, then rename). */
export function writeShardFile(f: ShardFileSpec): void {
  if (f.vectors) throw new Error(`${f.path}: a file with streamed vectors is written through ShardFileWriter`);
  writeSafetensors(f.path, f.tensors, f.metadata);
}

export function writeAttentionShard(dir: string, index: StoreIndex, name: string, k: number, perSentence: Map<number, { data: Float32Array; shape: number[] }>): void {
  writeShardFile(attentionShardFile(dir, index, name, k, perSentence));
}

function shardMeta(index: StoreIndex, k: number): Record<string, string> {
  const sh = index.shards[k]!;
  return {
    format: STORE_FORMAT,
    model: index.identity.model.id,
    model_weights_sha256: index.identity.model.weightsSha256,
    corpus: index.identity.corpus.id,
    corpus_sha256: index.identity.corpus.sha256,
    pooling: index.identity.pooling,
    first_sentence: String(index.firstSentence + sh.firstSentence),
    sentences: String(sh.sentences),
  };
}

/** Raised when a probe asks for activations a source does not have (missing layer, windowed sentence's attention). */
export class MissingActivation extends RuntimeFailure {}

interface Part {
  dir: string;
  index: StoreIndex;
  /** Offset of this part's first sentence in the combined store. */
  base: number;
  /** Per local sentence: offset of its first piece within its shard (piece-level shards). */
  pieceOffsets: Int32Array;
  windowed: Set<number>;
}

/** Where one sentence's rows lie: which file, from which row, how many rows. */
interface RowRange {
  file: string;
  from: number;
  count: number;
}

/**
 * One or more store folders read as one corpus-ordered store (several `--shard K/N` runs of one
 * extraction). Reads are positional (issue 9 item 4): `readWords`/`readPieces` read only the
 * byte ranges of the sentences asked for, coalescing neighbours in one shard file into one read,
 * so memory is the batch, never a split or a layer.
 */
export class ActivationStore implements ActivationSource {
  readonly numSentences: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  /** Hidden states readable at word level: stored as words, or as pieces pooled on read. */
  readonly layers: number[];
  /** Hidden states stored at word level (`layer.N/`). */
  readonly wordLayers: number[];
  /** Hidden states stored at piece level (`pieces.N/`). */
  readonly pieceLayers: number[];
  readonly attentionLayers: number[];
  readonly rawAttentionLayers: number[];
  readonly wordCounts: number[];
  readonly pieceCounts: number[];
  readonly sentenceIds: string[];
  readonly identity: StoreIdentity;
  readonly dirs: string[];
  /** What was read so far (the memory test checks that reads stay batch-sized). */
  readonly stats = { reads: 0, bytesRead: 0, largestRead: 0 };
  private readonly parts: Part[];
  private headerCache = new Map<string, SafetensorsHeader>();
  private readonly files = new FileHandles();

  constructor(parts: { dir: string; index: StoreIndex; base: number }[]) {
    this.parts = parts.map((p) => {
      const pieceOffsets = new Int32Array(p.index.numSentences);
      const counts = p.index.pieceCounts ?? [];
      for (let s = 0; s < p.index.numSentences; s++) {
        const [k] = p.index.sentenceMap[s]!;
        const first = s === 0 || p.index.sentenceMap[s - 1]![0] !== k;
        pieceOffsets[s] = first ? 0 : pieceOffsets[s - 1]! + (counts[s - 1] ?? 0);
      }
      return { ...p, pieceOffsets, windowed: new Set(p.index.windowed) };
    });
    const first = parts[0]!.index;
    this.identity = { ...first.identity, shard: { index: 1, count: 1 } };
    this.hiddenSize = first.hiddenSize;
    this.numHeads = first.numHeads;
    this.dirs = parts.map((p) => p.dir);
    this.numSentences = parts.reduce((a, p) => a + p.index.numSentences, 0);
    this.wordCounts = parts.flatMap((p) => p.index.wordCounts);
    this.pieceCounts = parts.flatMap((p) => p.index.pieceCounts ?? []);
    this.sentenceIds = parts.flatMap((p) => p.index.sentenceIds);
    const complete = (name: string, listed: (i: StoreIndex) => number[], l: number): boolean =>
      parts.every((p) => listed(p.index).includes(l) && p.index.shards.every((_, k) => existsSync(join(p.dir, name, shardFile(k)))));
    this.wordLayers = first.layers.filter((l) => complete(layerName(l), (i) => i.layers, l));
    this.pieceLayers = (first.pieceLayers ?? []).filter((l) => complete(piecesName(l), (i) => i.pieceLayers ?? [], l));
    this.layers = [...new Set([...this.wordLayers, ...this.pieceLayers])].sort((a, b) => a - b);
    this.attentionLayers = first.attentionLayers.filter((l) => complete(attnName(l), (i) => i.attentionLayers, l));
    this.rawAttentionLayers = (first.rawAttentionLayers ?? []).filter((l) => complete(rawAttnName(l), (i) => i.rawAttentionLayers ?? [], l));
  }

  get hasPieces(): boolean {
    return this.pieceLayers.length > 0;
  }

  get description(): Record<string, unknown> {
    return {
      kind: 'bert-probe store',
      dirs: this.dirs,
      model: this.identity.model,
      corpus: this.identity.corpus,
      pooling: this.identity.pooling,
      dtype: this.identity.dtype,
      wordLayers: this.wordLayers.map(layerName),
      pieceLayers: this.pieceLayers.map(layerName),
      attentionLayers: this.attentionLayers.map((l) => attnName(l)),
    };
  }

  get windowedSentences(): number[] {
    return this.parts.flatMap((p) => p.index.windowed.map((s) => s + p.base));
  }

  /** False for sentences longer than the model's positions (their attention was skipped). */
  hasAttention(sentence: number): boolean {
    const { part, local } = this.locate(sentence);
    return !part.windowed.has(local);
  }

  /** Word-level vectors [Σ words, hidden] of these sentences, in the order given (positional reads). */
  async readWords(layer: number, sentences: readonly number[], alloc?: (bytes: number) => ArrayBuffer): Promise<Float32Array> {
    const H = this.hiddenSize;
    let words = 0;
    for (const s of sentences) words += this.wordCounts[this.locate(s).global]!;
    if (this.wordLayers.includes(layer)) {
      // Every row is read into `out`, so it skips the zero fill (a trainer reads a layer each epoch).
      const out = wordArray(words * H, alloc ?? ((bytes) => Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer));
      this.readRows(sentences, 'vectors', H, out, (part, local, k) => ({ file: join(part.dir, layerName(layer), shardFile(k)), from: part.index.sentenceMap[local]![1], count: part.index.wordCounts[local]! }));
      return out;
    }
    if (this.pieceLayers.includes(layer)) {
      const out = wordArray(words * H, alloc);
      // Pieces pooled on read with the store's pooling: the same poolWords the word-level path uses.
      const { vectors, pieceCounts, wordSpans } = await this.readPieces(layer, sentences);
      let p = 0;
      let w = 0;
      for (let i = 0; i < sentences.length; i++) {
        poolWords(vectors.subarray(p * H, (p + pieceCounts[i]!) * H), H, wordSpans[i]!, this.identity.pooling, out, w * H);
        p += pieceCounts[i]!;
        w += wordSpans[i]!.length;
      }
      return out;
    }
    throw new MissingActivation(`the activation store has no complete ${layerName(layer)} (it has ${this.layers.map(layerName).join(', ') || 'no layers'}); run \`bert-probe extract\` with --layers including ${layer}`);
  }

  /** Piece-level vectors (every piece incl. [CLS]/[SEP]) and each word's piece span, per sentence. */
  async readPieces(layer: number, sentences: readonly number[]): Promise<PieceBatch> {
    if (!this.pieceLayers.includes(layer)) {
      throw new MissingActivation(`the activation store has no piece-level ${layerName(layer)} (piece level: ${this.pieceLayers.map(layerName).join(', ') || 'none'}); extract with level 'piece' for this layer`);
    }
    const H = this.hiddenSize;
    const pieceCounts = sentences.map((s) => this.pieceCounts[this.locate(s).global]!);
    const words = sentences.reduce((a, s) => a + this.wordCounts[this.locate(s).global]!, 0);
    const vectors = new Float32Array(pieceCounts.reduce((a, b) => a + b, 0) * H);
    const name = piecesName(layer);
    this.readRows(sentences, 'vectors', H, vectors, (part, local, k) => ({ file: join(part.dir, name, shardFile(k)), from: part.pieceOffsets[local]!, count: part.index.pieceCounts[local]! }));
    const flat = new Int32Array(words * 2);
    this.readRows(sentences, 'word_spans', 2, flat, (part, local, k) => ({ file: join(part.dir, name, shardFile(k)), from: part.index.sentenceMap[local]![1], count: part.index.wordCounts[local]! }));
    const wordSpans: [number, number][][] = [];
    let at = 0;
    for (const s of sentences) {
      const W = this.wordCounts[this.locate(s).global]!;
      const sp: [number, number][] = [];
      for (let w = 0; w < W; w++, at += 2) sp.push([flat[at]!, flat[at + 1]!]);
      wordSpans.push(sp);
    }
    return { vectors, pieceCounts, wordSpans };
  }

  /** Word-level vectors of one hidden state for every sentence, in corpus order (whole split: prefer readWords). */
  async readLayer(layer: number): Promise<{ vectors: Float32Array; sentenceOffsets: Int32Array }> {
    const sentenceOffsets = new Int32Array(this.numSentences + 1);
    for (let s = 0; s < this.numSentences; s++) sentenceOffsets[s + 1] = sentenceOffsets[s]! + this.wordCounts[s]!;
    const vectors = await this.readWords(layer, [...Array(this.numSentences).keys()]);
    return { vectors, sentenceOffsets };
  }

  /** Word-level attention [heads, W+2, W+2] of one sentence (Clark et al. 2019 conversion). */
  async readAttention(layer: number, sentence: number): Promise<ArrayTensor> {
    return this.readAttn(attnName(layer), this.attentionLayers, layer, sentence, this.wordCounts[sentence]! + 2);
  }

  /** Piece-level attention [heads, P, P] of one sentence (stores built with raw attention). */
  async readRawAttention(layer: number, sentence: number): Promise<ArrayTensor> {
    const { part, local } = this.locate(sentence);
    return this.readAttn(rawAttnName(layer), this.rawAttentionLayers, layer, sentence, part.index.pieceCounts[local]!);
  }

  async close(): Promise<void> {
    this.files.closeAll();
    this.headerCache.clear();
  }

  /**
   * Check every shard header against the index (shapes of `vectors`, `word_spans`): a store
   * written elsewhere (docs/store-format.md) fails here with the file named, not mid-run.
   */
  checkShapes(): void {
    const H = this.hiddenSize;
    for (const part of this.parts) {
      const shards = part.index.shards;
      for (let k = 0; k < shards.length; k++) {
        const sh = shards[k]!;
        const pieces = part.index.pieceCounts.slice(sh.firstSentence, sh.firstSentence + sh.sentences).reduce((a, b) => a + b, 0);
        for (const l of this.wordLayers) this.tensorInfo(join(part.dir, layerName(l), shardFile(k)), 'vectors', [sh.words, H]);
        for (const l of this.pieceLayers) {
          this.tensorInfo(join(part.dir, piecesName(l), shardFile(k)), 'vectors', [pieces, H]);
          this.tensorInfo(join(part.dir, piecesName(l), shardFile(k)), 'word_spans', [sh.words, 2]);
        }
      }
    }
  }

  /**
   * Rows of tensor `tensor` ([rows, width]) for each sentence, in the order given, into `out`.
   * Runs of sentences adjacent in one file are read with one positional read.
   */
  private readRows(sentences: readonly number[], tensor: string, width: number, out: Float32Array | Int32Array, range: (part: Part, local: number, shard: number) => RowRange): void {
    let run: RowRange | null = null;
    let outRow = 0;
    let runOut = 0;
    const flush = (): void => {
      if (!run || run.count === 0) return;
      const info = this.tensorInfo(run.file, tensor);
      const rows = info.shape[0]!;
      if (info.shape.length !== 2 || info.shape[1] !== width || run.from + run.count > rows) {
        throw new InputError(`activation shard tensor '${tensor}' has the wrong shape`, { file: run.file, expected: `[≥ ${run.from + run.count}, ${width}]`, found: `[${info.shape.join(', ')}]`, fix: 'the store is damaged or was written for another corpus: extract again (or fix the writer, docs/store-format.md)' });
      }
      const bytes = DTYPE_BYTES[info.dtype];
      const position = info.dataStart + run.from * width * bytes;
      const length = run.count * width * bytes;
      const direct = out instanceof Int32Array ? info.dtype === 'I32' : info.dtype === 'F32';
      if (out instanceof Int32Array && !direct) throw new InputError(`activation shard tensor '${tensor}' must be I32`, { file: run.file, expected: 'I32', found: info.dtype, fix: 'write word spans as int32' });
      if (direct && LITTLE_ENDIAN) {
        this.files.readAt(run.file, position, new Uint8Array(out.buffer, out.byteOffset + runOut * width * 4, length));
      } else {
        const buf = Buffer.alloc(length);
        this.files.readAt(run.file, position, buf);
        if (out instanceof Int32Array) {
          const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
          for (let i = 0; i < run.count * width; i++) out[runOut * width + i] = dv.getInt32(i * 4, true);
        } else {
          out.set(toFloat32(buf, info.dtype), runOut * width);
        }
      }
      this.stats.reads++;
      this.stats.bytesRead += length;
      this.stats.largestRead = Math.max(this.stats.largestRead, length);
    };
    for (const s of sentences) {
      const { part, local } = this.locate(s);
      const r = range(part, local, part.index.sentenceMap[local]![0]);
      if (run && run.file === r.file && run.from + run.count === r.from) {
        run.count += r.count;
      } else {
        flush();
        run = { ...r };
        runOut = outRow;
      }
      outRow += r.count;
    }
    flush();
  }

  private readAttn(name: string, have: number[], layer: number, sentence: number, n: number): ArrayTensor {
    if (!have.includes(layer)) throw new MissingActivation(`the activation store has no ${name}; run \`bert-probe extract --attention\` with this layer`);
    const { part, local } = this.locate(sentence);
    if (part.windowed.has(local)) {
      throw new MissingActivation(`sentence ${sentence} (${this.sentenceIds[sentence]}) is longer than the model's ${part.index.identity.maxPositions} positions: its attention was skipped (check hasAttention first)`);
    }
    const [k] = part.index.sentenceMap[local]!;
    const shape = [this.numHeads, n, n];
    const file = join(part.dir, name, shardFile(k));
    const info = this.tensorInfo(file, `sentence.${local}`, shape);
    const buf = Buffer.alloc(info.end - info.dataStart);
    this.files.readAt(file, info.dataStart, buf);
    return { data: toFloat32(buf, info.dtype), shape };
  }

  private locate(sentence: number): { part: Part; local: number; global: number } {
    if (!Number.isInteger(sentence) || sentence < 0 || sentence >= this.numSentences) throw new RangeError(`sentence ${sentence} is outside 0..${this.numSentences - 1}`);
    let part = this.parts[0]!;
    for (const p of this.parts) if (p.base <= sentence) part = p;
    return { part, local: sentence - part.base, global: sentence };
  }

  /** A tensor's dtype, shape and absolute byte range in its file (headers cached); checks the shape when given. */
  private tensorInfo(path: string, name: string, shape?: number[]): { dtype: SafetensorsDtype; shape: number[]; dataStart: number; end: number } {
    let header = this.headerCache.get(path);
    if (!header) {
      if (!existsSync(path)) throw new MissingActivation(`activation shard ${path} is missing; run the same \`bert-probe extract\` again to resume`);
      header = readSafetensorsHeader(path);
      if (this.headerCache.size >= 4096) this.headerCache.clear();
      this.headerCache.set(path, header);
    }
    const info = header.tensors.get(name);
    if (!info || (shape && info.shape.join(',') !== shape.join(','))) {
      throw new InputError(`activation shard does not hold '${name}'${shape ? ` of shape [${shape.join(', ')}]` : ''}`, { file: path, expected: shape ? `${name} [${shape.join(', ')}]` : name, found: info ? `[${info.shape.join(', ')}]` : 'no such tensor', fix: 'the store is damaged or was written for another corpus: delete the folder (or --force) and extract again' });
    }
    return { dtype: info.dtype, shape: [...info.shape], dataStart: header.dataStart + info.dataOffsets[0], end: header.dataStart + info.dataOffsets[1] };
  }
}

/**
 * Open shard files, least recently used first out (a shuffled epoch touches every shard of every
 * layer again and again; opening a file per read cost more than the read).
 */
class FileHandles {
  private readonly open = new Map<string, number>();
  constructor(private readonly max = 64) {}

  /** Fill `target` from `path` at byte `position` (a positional read; throws if the file is short). */
  readAt(path: string, position: number, target: Uint8Array): void {
    let fd = this.open.get(path);
    if (fd === undefined) {
      if (this.open.size >= this.max) {
        const [oldest, ofd] = this.open.entries().next().value as [string, number];
        this.open.delete(oldest);
        closeSync(ofd);
      }
      fd = openSync(path, 'r');
    } else {
      this.open.delete(path);
    }
    this.open.set(path, fd);
    const got = readInto(fd, target, position);
    if (got !== target.length) throw new InputError('activation shard is truncated', { file: path, expected: `${target.length} bytes at offset ${position}`, found: `${got}`, fix: 'delete the file and run extract again' });
  }

  closeAll(): void {
    for (const fd of this.open.values()) closeSync(fd);
    this.open.clear();
  }
}

/**
 * Open one store, or several `--shard K/N` stores of the same extraction as one (in corpus
 * order). Refuses folders that are not stores, stores of different models / corpora / pooling,
 * overlaps and gaps.
 */
export function openStore(dirs: string[]): ActivationStore {
  if (dirs.length === 0) throw new InputError('no activation store given', { expected: 'one or more store folders', found: 'none', fix: 'pass the folder(s) `bert-probe extract` printed' });
  const parts: { dir: string; index: StoreIndex; base: number }[] = [];
  for (const d of dirs) {
    const dir = resolve(d);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError('activation store folder not found', { file: dir, expected: 'a folder written by `bert-probe extract`', found: 'nothing there', fix: 'check the path, or run `bert-probe extract` first' });
    const index = readIndex(dir);
    if (!index) throw new InputError('not an activation store (no index.json)', { file: dir, expected: 'a folder written by `bert-probe extract`', found: 'no index.json', fix: 'run `bert-probe extract --out DIR` first' });
    parts.push({ dir, index, base: 0 });
  }
  parts.sort((a, b) => a.index.firstSentence - b.index.firstSentence);
  const first = parts[0]!;
  const norm = (i: StoreIdentity): StoreIdentity => ({ ...i, shard: { index: 1, count: i.shard.count } });
  let next = 0;
  for (const p of parts) {
    const diff = identityDifference(norm(first.index.identity), norm(p.index.identity));
    if (diff) {
      throw new InputError(`activation stores disagree on ${diff.field}`, { file: p.dir, expected: `${diff.field} ${diff.stored} (as in ${first.dir})`, found: diff.wanted, fix: 'combine only the --shard K/N stores of one extraction' });
    }
    if (p.index.firstSentence !== next) {
      const what = p.index.firstSentence < next ? 'overlaps the previous one' : `leaves sentences ${next}..${p.index.firstSentence - 1} uncovered`;
      throw new InputError(`activation store ${what}`, { file: p.dir, expected: `a store starting at corpus sentence ${next}`, found: `shard ${p.index.identity.shard.index}/${p.index.identity.shard.count} starting at ${p.index.firstSentence}`, fix: `pass every --shard K/${first.index.identity.shard.count} store exactly once` });
    }
    p.base = next;
    next += p.index.numSentences;
  }
  const total = first.index.identity.corpus.sentences;
  if (next !== total) {
    throw new InputError(`activation stores cover ${next} of the corpus's ${total} sentences`, { file: parts[parts.length - 1]!.dir, expected: `all ${total} sentences of ${first.index.identity.corpus.id}`, found: `sentences 0..${next - 1}`, fix: `extract the missing --shard K/${first.index.identity.shard.count} parts and pass all their folders` });
  }
  return new ActivationStore(parts);
}

/** Make a folder for a store (and nothing else there that we would remove). */
export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}
