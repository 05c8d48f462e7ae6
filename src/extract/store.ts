import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ArrayTensor } from '../model/types.js';
import { readSafetensorsHeader, toFloat32, writeSafetensors, type SafetensorsHeader } from '../model/safetensors.js';
import { isTempName, processAlive } from '../util/atomic.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { attnName, layerName } from '../util/names.js';
import { cacheDir } from '../util/paths.js';
import type { Pooling } from './align.js';

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

function stableJson(v: unknown): string {
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
  return raw;
}

/** Names the first identity field that differs, for the refusal message. */
export function identityDifference(a: StoreIdentity, b: StoreIdentity): { field: string; stored: string; wanted: string } | null {
  const fields: [string, (x: StoreIdentity) => unknown][] = [
    ['model', (x) => `${x.model.id} (weights sha256 ${x.model.weightsSha256.slice(0, 12)}${x.model.randomInit ? ', random-init' : ''})`],
    ['corpus', (x) => `${x.corpus.id} (sha256 ${x.corpus.sha256.slice(0, 12)}, ${x.corpus.sentences} sentences)`],
    ['tokenizer', (x) => x.tokenizer],
    ['pooling', (x) => x.pooling],
    ['dtype', (x) => x.dtype],
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

export function writeLayerShard(dir: string, index: StoreIndex, layer: number, k: number, vectors: Float32Array, wordCounts: number[]): void {
  const meta = shardMeta(index, k);
  writeSafetensors(join(dir, layerName(layer), shardFile(k)), {
    vectors: { dtype: index.identity.dtype === 'float16' ? 'F16' : 'F32', shape: [vectors.length / index.hiddenSize, index.hiddenSize], data: vectors },
    word_counts: { dtype: 'I32', shape: [wordCounts.length], data: Int32Array.from(wordCounts) },
  }, { ...meta, name: layerName(layer) });
}

export function writeAttentionShard(dir: string, index: StoreIndex, name: string, k: number, perSentence: Map<number, { data: Float32Array; shape: number[] }>): void {
  const tensors = new Map<string, { dtype: 'F32' | 'F16'; shape: number[]; data: Float32Array }>();
  for (const [s, t] of [...perSentence.entries()].sort((a, b) => a[0] - b[0])) {
    tensors.set(`sentence.${s}`, { dtype: index.identity.dtype === 'float16' ? 'F16' : 'F32', shape: t.shape, data: t.data });
  }
  writeSafetensors(join(dir, name, shardFile(k)), tensors, { ...shardMeta(index, k), name });
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

/** Raised when a probe asks for attention a store does not have (windowed sentence, missing layer). */
export class MissingActivation extends RuntimeFailure {}

interface Part {
  dir: string;
  index: StoreIndex;
  /** Offset of this part's first sentence in the combined store. */
  base: number;
}

/**
 * One or more store folders read as one corpus-ordered store (several `--shard K/N` runs of one
 * extraction). Only what `readLayer`/`readAttention` asks for is read from disk.
 */
export class ActivationStore {
  readonly numSentences: number;
  readonly hiddenSize: number;
  readonly numHeads: number;
  /** Hidden-state indices whose shards are all present in every part. */
  readonly layers: number[];
  readonly attentionLayers: number[];
  readonly rawAttentionLayers: number[];
  readonly wordCounts: number[];
  readonly sentenceIds: string[];
  readonly identity: StoreIdentity;
  readonly dirs: string[];
  private readonly parts: Part[];
  private headerCache = new Map<string, SafetensorsHeader>();

  constructor(parts: Part[]) {
    this.parts = parts;
    const first = parts[0]!.index;
    this.identity = { ...first.identity, shard: { index: 1, count: 1 } };
    this.hiddenSize = first.hiddenSize;
    this.numHeads = first.numHeads;
    this.dirs = parts.map((p) => p.dir);
    this.numSentences = parts.reduce((a, p) => a + p.index.numSentences, 0);
    this.wordCounts = parts.flatMap((p) => p.index.wordCounts);
    this.sentenceIds = parts.flatMap((p) => p.index.sentenceIds);
    const complete = (name: string, listed: (i: StoreIndex) => number[], l: number): boolean =>
      parts.every((p) => listed(p.index).includes(l) && p.index.shards.every((_, k) => existsSync(join(p.dir, name, shardFile(k)))));
    this.layers = first.layers.filter((l) => complete(layerName(l), (i) => i.layers, l));
    this.attentionLayers = first.attentionLayers.filter((l) => complete(attnName(l), (i) => i.attentionLayers, l));
    this.rawAttentionLayers = (first.rawAttentionLayers ?? []).filter((l) => complete(rawAttnName(l), (i) => i.rawAttentionLayers ?? [], l));
  }

  get windowedSentences(): number[] {
    return this.parts.flatMap((p) => p.index.windowed.map((s) => s + p.base));
  }

  /** False for sentences longer than the model's positions (their attention was skipped). */
  hasAttention(sentence: number): boolean {
    const { part, local } = this.locate(sentence);
    return !part.index.windowed.includes(local);
  }

  /** Word-level vectors of one hidden state for every sentence, in corpus order. */
  async readLayer(layer: number): Promise<{ vectors: Float32Array; sentenceOffsets: Int32Array }> {
    if (!this.layers.includes(layer)) {
      throw new MissingActivation(`the activation store has no complete ${layerName(layer)} (it has ${this.layers.map(layerName).join(', ') || 'no layers'}); run \`bert-probe extract\` with --layers including ${layer}`);
    }
    const H = this.hiddenSize;
    const sentenceOffsets = new Int32Array(this.numSentences + 1);
    for (let s = 0; s < this.numSentences; s++) sentenceOffsets[s + 1] = sentenceOffsets[s]! + this.wordCounts[s]!;
    const vectors = new Float32Array(sentenceOffsets[this.numSentences]! * H);
    let at = 0;
    for (const part of this.parts) {
      for (let k = 0; k < part.index.shards.length; k++) {
        const path = join(part.dir, layerName(layer), shardFile(k));
        const data = this.readTensor(path, 'vectors', [part.index.shards[k]!.words, H]);
        vectors.set(data, at);
        at += data.length;
      }
    }
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

  private readAttn(name: string, have: number[], layer: number, sentence: number, n: number): ArrayTensor {
    if (!have.includes(layer)) throw new MissingActivation(`the activation store has no ${name}; run \`bert-probe extract --attention\` with this layer`);
    const { part, local } = this.locate(sentence);
    if (part.index.windowed.includes(local)) {
      throw new MissingActivation(`sentence ${sentence} (${this.sentenceIds[sentence]}) is longer than the model's ${part.index.identity.maxPositions} positions: its attention was skipped (check hasAttention first)`);
    }
    const [k] = part.index.sentenceMap[local]!;
    const shape = [this.numHeads, n, n];
    return { data: this.readTensor(join(part.dir, name, shardFile(k)), `sentence.${local}`, shape), shape };
  }

  private locate(sentence: number): { part: Part; local: number } {
    if (!Number.isInteger(sentence) || sentence < 0 || sentence >= this.numSentences) throw new RangeError(`sentence ${sentence} is outside 0..${this.numSentences - 1}`);
    let part = this.parts[0]!;
    for (const p of this.parts) if (p.base <= sentence) part = p;
    return { part, local: sentence - part.base };
  }

  private readTensor(path: string, name: string, shape: number[]): Float32Array {
    let header = this.headerCache.get(path);
    if (!header) {
      if (!existsSync(path)) throw new MissingActivation(`activation shard ${path} is missing; run the same \`bert-probe extract\` again to resume`);
      header = readSafetensorsHeader(path);
      if (this.headerCache.size > 64) this.headerCache.clear();
      this.headerCache.set(path, header);
    }
    const info = header.tensors.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!info || info.shape.reduce((a, b) => a * b, 1) !== n) {
      throw new InputError(`activation shard does not hold '${name}' of shape [${shape.join(', ')}]`, { file: path, expected: `${name} [${shape.join(', ')}]`, found: info ? `[${info.shape.join(', ')}]` : 'no such tensor', fix: 'the store is damaged: delete the folder (or --force) and extract again' });
    }
    const [b, e] = info.dataOffsets;
    const buf = Buffer.alloc(e - b);
    const fd = openSync(path, 'r');
    try {
      let got = 0;
      while (got < buf.length) {
        const r = readSync(fd, buf, got, buf.length - got, header.dataStart + b + got);
        if (r === 0) break;
        got += r;
      }
      if (got !== buf.length) throw new InputError('activation shard is truncated', { file: path, expected: `${buf.length} bytes of '${name}'`, found: `${got}`, fix: 'delete the file and run extract again' });
    } finally {
      closeSync(fd);
    }
    return toFloat32(buf, info.dtype);
  }
}

/**
 * Open one store, or several `--shard K/N` stores of the same extraction as one (in corpus
 * order). Refuses folders that are not stores, stores of different models / corpora / pooling,
 * overlaps and gaps.
 */
export function openStore(dirs: string[]): ActivationStore {
  if (dirs.length === 0) throw new InputError('no activation store given', { expected: 'one or more store folders', found: 'none', fix: 'pass the folder(s) `bert-probe extract` printed' });
  const parts: Part[] = [];
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
