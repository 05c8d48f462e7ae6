import { readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Corpus } from '../corpus/types.js';
import type { Engine, LoadedModel, Precision } from '../model/types.js';
import type { ActivationRequest } from './request.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import { attnName, layerName } from '../util/names.js';
import { Ui } from '../util/ui.js';
import { writeJsonAtomic } from '../util/atomic.js';
import { faultPoint, onInterrupt } from '../util/interrupt.js';
import { poolWords, wordAttention, type Pooling } from './align.js';
import { forwardSentences, type SentenceForward } from './forward.js';
import {
  ActivationStore, cleanStaleTemps, defaultStoreDir, identityDifference, INDEX_FILE, lockStore, openStore, rawAttnName, readIndex, storeFolderEntries,
  attentionShardFile, layerShardFile, pieceShardFile, piecesName, shardDone, shardRange, ShardFileWriter, STORE_FORMAT, STORE_VERSION, type StoreIdentity, type StoreIndex,
} from './store.js';
import { defaultStride } from './windows.js';
import { canonicalModelId } from '../model/load.js';

/**
 * Corpus → model → word-level activations on disk (DESIGN.md data flow). Streams shard by
 * shard: the sentences of one shard are tokenized, run in length-bucketed batches, pooled to
 * words and written, then dropped, so memory does not grow with the corpus. A rerun (after a
 * kill, or for another probe) recomputes only missing shard files; a store built for anything
 * else (model, corpus, tokenizer, pooling, dtype) is refused, never reused.
 */
export interface ExtractOptions {
  model: LoadedModel;
  /**
   * The engine, or a function that makes one: called only when some shard is missing, so a
   * store that is already complete costs no engine start (the caller disposes what it made).
   */
  engine: Engine | (() => Promise<Engine>);
  corpus: Corpus;
  request: ActivationRequest;
  pooling?: Pooling;
  dtype?: 'float32' | 'float16';
  /** The engine's precision (`--precision`; default fp32): part of the store identity. */
  precision?: Precision;
  batchSize?: number;
  storeDir?: string;
  ui?: Ui;
  /** 1-based: `--shard 2/4` is {index: 2, count: 4}. */
  shard?: { index: number; count: number };
  /** Replace a store at storeDir that was built for something else. */
  force?: boolean;
  /** Sentences per shard file (default 256). */
  shardSize?: number;
}

export interface ExtractReport {
  dir: string;
  sentences: number;
  /** Sentences run through the model in this call (0 when everything was already stored). */
  computedSentences: number;
  tokens: number;
  seconds: number;
  /** Of `seconds`, the time spent in the engine's forward passes (the rest: tokenizing, pooling, writing). */
  forwardSeconds: number;
  /**
   * Time breakdown of the rest: tokenizing, copying/pooling pieces to words and writing them to
   * the shard files (wall seconds on this thread), making a shard's files final (wall seconds of
   * its fsyncs and renames, on the thread pool, overlapped with the next shard's forward passes).
   */
  tokenizeSeconds: number;
  poolSeconds: number;
  writeSeconds: number;
  tokensPerSecond: number;
  shardsWritten: number;
  shardsReused: number;
  windowed: number;
  attentionSkipped: number;
  emptyWords: number;
}

export const DEFAULT_SHARD_SIZE = 256;

export async function extractActivations(opts: ExtractOptions): Promise<ActivationStore> {
  return (await extractWithReport(opts)).store;
}

export function storeIdentity(opts: Pick<ExtractOptions, 'model' | 'corpus' | 'pooling' | 'dtype' | 'shard' | 'precision'>): StoreIdentity {
  const { model, corpus } = opts;
  const maxPositions = model.config.maxPositionEmbeddings;
  return {
    model: { id: canonicalModelId(model.source), weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    corpus: { id: corpus.id, sha256: corpus.sha256, sentences: corpus.sentences.length },
    tokenizer: model.tokenizer.fingerprint,
    pooling: opts.pooling ?? 'mean',
    dtype: opts.dtype ?? 'float32',
    precision: opts.precision ?? 'fp32',
    maxPositions,
    window: { content: maxPositions - 2, stride: defaultStride(maxPositions - 2) },
    shard: opts.shard ?? { index: 1, count: 1 },
  };
}

/**
 * Whether the cached store for these options already holds everything the request needs (read
 * only: no lock, nothing written), e.g. for a run estimate before extraction.
 */
export function storeComplete(opts: Pick<ExtractOptions, 'model' | 'corpus' | 'request' | 'pooling' | 'dtype' | 'shard' | 'precision' | 'storeDir'>): boolean {
  const identity = storeIdentity(opts);
  const dir = resolve(opts.storeDir ?? defaultStoreDir(identity));
  let index: StoreIndex | null;
  try {
    index = readIndex(dir);
  } catch {
    return false;
  }
  if (!index || identityDifference(index.identity, identity)) return false;
  const { request } = opts;
  const dirs = [
    ...request.layers.map((l) => (request.level === 'piece' ? piecesName(l) : layerName(l))),
    ...request.attentionLayers.map((l) => (request.rawAttention ? rawAttnName(l) : attnName(l))),
  ];
  return index.shards.every((_, k) => dirs.every((d) => shardDone(dir, d, k)));
}

export async function extractWithReport(opts: ExtractOptions): Promise<{ store: ActivationStore; report: ExtractReport }> {
  const ui = opts.ui ?? new Ui({ quiet: true });
  const { model, request: needs } = opts;
  let engine: Engine | undefined = typeof opts.engine === 'function' ? undefined : opts.engine;
  const getEngine = async (): Promise<Engine> => (engine ??= await (opts.engine as () => Promise<Engine>)());
  const cfg = model.config;
  const shard = opts.shard ?? { index: 1, count: 1 };
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 1 || shard.index > shard.count) {
    throw new InputError(`bad --shard ${shard.index}/${shard.count}`, { expected: 'K/N with 1 <= K <= N', found: `${shard.index}/${shard.count}`, fix: 'e.g. --shard 1/4 ... --shard 4/4' });
  }
  for (const l of needs.layers) if (!Number.isInteger(l) || l < 0 || l > cfg.numHiddenLayers) throw new InputError(`layer ${l} does not exist`, { expected: `0..${cfg.numHiddenLayers}`, found: String(l), fix: 'pick layers the model has' });
  for (const l of needs.attentionLayers) if (!Number.isInteger(l) || l < 1 || l > cfg.numHiddenLayers) throw new InputError(`attention layer ${l} does not exist`, { expected: `1..${cfg.numHiddenLayers}`, found: String(l), fix: 'pick layers the model has' });
  if (needs.headMask) throw new RuntimeFailure('probes with head masks run the model themselves; they have no activation store');
  const identity = storeIdentity({ ...opts, shard });
  const dir = resolve(opts.storeDir ?? defaultStoreDir(identity));

  // 1. The store folder, under its writer lock (two runs on one cache are serialised; the
  // second finds the first one's shards), with temporary files of dead writers removed first
  // so they never make a store look foreign (issue 15 item 3).
  const releaseLock = await lockStore(dir, ui);
  try {
    return await extractLocked(opts, { ui, getEngine, dir, identity, shard });
  } finally {
    releaseLock();
  }
}

async function extractLocked(
  opts: ExtractOptions,
  ctx: { ui: Ui; getEngine: () => Promise<Engine>; dir: string; identity: StoreIdentity; shard: { index: number; count: number } },
): Promise<{ store: ActivationStore; report: ExtractReport }> {
  const { ui, getEngine, dir, identity, shard } = ctx;
  const { model, corpus, request: needs } = opts;
  const cfg = model.config;
  const shardSize = opts.shardSize ?? DEFAULT_SHARD_SIZE;
  const batchSize = opts.batchSize ?? 16;
  const hidden = cfg.hiddenSize;
  const tok = model.tokenizer;
  // Level 'piece' stores hidden states per piece only (word-level reads pool them on read).
  const pieceLevel = needs.level === 'piece';
  const wordLayers = pieceLevel ? [] : needs.layers;
  const pieceLayers = pieceLevel ? needs.layers : [];
  const wordAttn = needs.rawAttention ? [] : needs.attentionLayers;
  const rawAttn = needs.rawAttention ? needs.attentionLayers : [];
  const staleFirst = cleanStaleTemps(dir);
  if (staleFirst) ui.info(`removed ${staleFirst} temporary file(s) left in ${dir} by a stopped run`);
  let existing = readIndex(dir);
  if (existing) {
    const diff = identityDifference(existing.identity, identity);
    if (diff && !opts.force) {
      throw new InputError(`activation store was built for another ${diff.field}`, {
        file: join(dir, INDEX_FILE), expected: `${diff.field} ${diff.wanted}`, found: `${diff.field} ${diff.stored}`,
        fix: opts.storeDir ? 'use another --out folder, or pass --force to replace this store' : `remove the cached store (rm -r '${dir}') and run again`,
      });
    }
    if (diff) {
      ui.warn(`replacing the activation store in ${dir} (built for another ${diff.field}: ${diff.stored})`);
      clearStore(dir);
      existing = null;
    }
  } else if (storeFolderEntries(dir).length > 0 && !opts.force) {
    throw new InputError('folder is not empty and is not an activation store', {
      file: dir,
      expected: 'an empty folder or one written by `bert-probe extract` (with index.json)',
      found: storeFolderEntries(dir).slice(0, 5).join(', '),
      fix: opts.storeDir ? 'choose another --out folder, or pass --force to write into it' : `this is in bert-probe's cache: remove it (rm -r '${dir}') and run again`,
    });
  }

  // 2. Tokenize this store's sentences (small: ids and spans only).
  const tTok = performance.now();
  const [from, to] = shardRange(corpus.sentences.length, shard);
  const ids: Int32Array[] = [];
  const spans: [number, number][][] = [];
  let emptyWords = 0;
  for (let s = from; s < to; s++) {
    const sent = corpus.sentences[s]!;
    const enc = tok.encodeWords(sent.words);
    if (enc.wordSpans.length !== sent.words.length) {
      throw new RuntimeFailure(`tokenizer returned ${enc.wordSpans.length} word spans for ${sent.words.length} words (sentence ${sent.id})`);
    }
    for (const [a, b] of enc.wordSpans) if (b <= a) emptyWords++;
    ids.push(Int32Array.from(enc.ids));
    spans.push(enc.wordSpans);
  }
  const n = to - from;
  const tokenizeSeconds = (performance.now() - tTok) / 1000;
  const wordCounts = spans.map((sp) => sp.length);
  const pieceCounts = ids.map((x) => x.length);
  const windowed = pieceCounts.flatMap((p, i) => (p > cfg.maxPositionEmbeddings ? [i] : []));

  // 3. The index (written first, so a killed run knows what it was doing).
  const shards: StoreIndex['shards'] = [];
  const sentenceMap: [number, number][] = [];
  for (let k = 0, s = 0; s < n; k++, s += shardSize) {
    const m = Math.min(shardSize, n - s);
    let words = 0;
    for (let i = s; i < s + m; i++) {
      sentenceMap.push([k, words]);
      words += wordCounts[i]!;
    }
    shards.push({ file: `shard-${String(k).padStart(5, '0')}.safetensors`, firstSentence: s, sentences: m, words });
  }
  if (existing && (existing.shardSize !== shardSize || existing.numSentences !== n)) {
    throw new InputError('activation store was written with another shard size', { file: join(dir, INDEX_FILE), expected: `${shardSize} sentences per shard`, found: `${existing.shardSize}`, fix: 'pass the same shard size, or --force to rebuild' });
  }
  const union = (a: number[] = [], b: readonly number[]): number[] => [...new Set([...a, ...b])].sort((x, y) => x - y);
  const now = new Date().toISOString();
  const index: StoreIndex = {
    format: STORE_FORMAT,
    version: STORE_VERSION,
    identity,
    hiddenSize: hidden,
    numHeads: cfg.numAttentionHeads,
    numLayers: cfg.numHiddenLayers,
    layers: union(existing?.layers, wordLayers),
    pieceLayers: union(existing?.pieceLayers, pieceLayers),
    attentionLayers: union(existing?.attentionLayers, wordAttn),
    rawAttentionLayers: union(existing?.rawAttentionLayers, rawAttn),
    shardSize,
    firstSentence: from,
    numSentences: n,
    sentenceIds: corpus.sentences.slice(from, to).map((s) => s.id),
    wordCounts,
    pieceCounts,
    sentenceMap,
    shards,
    windowed,
    emptyWords,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  writeJsonAtomic(join(dir, INDEX_FILE), index);

  // 4. Shard by shard: compute only what is missing.
  // SIGINT/SIGTERM: every shard file written so far is whole (written to a temporary name and
  // renamed); say what is kept and how to continue (issue 15 item 2).
  let shardsDone = 0;
  const removeHook = onInterrupt(() => ui.error(`interrupted: ${shardsDone} of ${shards.length} shard(s) of the activation store ${dir} are complete and kept; run the same command again to continue from there`));
  const bar = ui.bar('extract', n, '{bar} {value}/{total} sentences | {rate} tok/s | ETA {eta_formatted}');
  const t0 = performance.now();
  let tokens = 0;
  let forwardSeconds = 0;
  let poolSeconds = 0;
  let writeSeconds = 0;
  let computed = 0;
  let shardsWritten = 0;
  let shardsReused = 0;
  // A shard's vectors go straight to its files' temporary names as sentences are pooled
  // (store.ts ShardFileWriter), so they are never all in memory (13 layers x 20 MB for bert-base
  // on PTB); at the shard's end the files are made final (fsync on the thread pool, rename) while
  // the next shard runs through the model: the engine no longer waits ~1 s of every ~16 s for
  // the writes. At most one shard is being made final at a time.
  let committing: Promise<number> | null = null;
  // Fault injection (tests) after shard k is final, placed where this thread waits for it, between
  // two shards' forward passes: a signal then never lands while the engine's worker runs a batch.
  const committed = async (): Promise<void> => {
    if (committing) await faultPoint(`shard:${await committing}`);
  };
  const commitShard = async (k: number, writers: ShardFileWriter[], sentences: number): Promise<number> => {
    const tw = performance.now();
    try {
      for (const w of writers) await w.commit();
    } catch (err) {
      for (const w of writers) w.discard();
      throw err;
    }
    writeSeconds += (performance.now() - tw) / 1000;
    shardsWritten += writers.length;
    computed += sentences;
    shardsDone++;
    return k;
  };
  // One sentence's pooled word vectors of one layer, reused (the rows are written out at once).
  let scratch = new Float32Array(0);
  try {
    for (let k = 0; k < shards.length; k++) {
      const sh = shards[k]!;
      const layers = wordLayers.filter((l) => !shardDone(dir, layerName(l), k));
      const pieces = pieceLayers.filter((l) => !shardDone(dir, piecesName(l), k));
      const attn = wordAttn.filter((l) => !shardDone(dir, attnName(l), k));
      const raw = rawAttn.filter((l) => !shardDone(dir, rawAttnName(l), k));
      const doneFiles = needs.layers.length + wordAttn.length + rawAttn.length - layers.length - pieces.length - attn.length - raw.length;
      shardsReused += doneFiles;
      if (layers.length + pieces.length + attn.length + raw.length === 0) {
        shardsDone++;
        bar.increment(sh.sentences, { rate: '-' });
        continue;
      }
      const s0 = sh.firstSentence;
      const shardPieces = pieceCounts.slice(s0, s0 + sh.sentences);
      const pieceOffsets: number[] = [];
      let shardPieceTotal = 0;
      for (const p of shardPieces) {
        pieceOffsets.push(shardPieceTotal);
        shardPieceTotal += p;
      }
      // Every file opened for this shard, discarded unless handed to commitShard.
      const opened: ShardFileWriter[] = [];
      const open = (spec: Parameters<typeof ShardFileWriter.open>[0]): ShardFileWriter => {
        const w = ShardFileWriter.open(spec);
        opened.push(w);
        return w;
      };
      let handedOff = false;
      try {
        const layerOut = new Map(layers.map((l) => [l, open(layerShardFile(dir, index, l, k, wordCounts.slice(s0, s0 + sh.sentences)))]));
        const flatSpans = pieces.length > 0 ? Int32Array.from(spans.slice(s0, s0 + sh.sentences).flat(2)) : new Int32Array(0);
        const pieceOut = new Map(pieces.map((l) => [l, open(pieceShardFile(dir, index, l, k, shardPieces, flatSpans))]));
        const attnOut = new Map(attn.map((l) => [l, new Map<number, { data: Float32Array; shape: number[] }>()]));
        const rawOut = new Map(raw.map((l) => [l, new Map<number, { data: Float32Array; shape: number[] }>()]));
        const encs = ids.slice(s0, s0 + sh.sentences).map((x) => ({ ids: x }));
        const attnLayers = union(attn, raw);
        const poolSentence = (r: SentenceForward): void => {
          const s = s0 + r.index;
          bar.increment(1);
          const W = wordCounts[s]!;
          if (layerOut.size > 0) {
            if (scratch.length < W * hidden) scratch = new Float32Array(W * hidden);
            const rows = scratch.subarray(0, W * hidden);
            for (const [l, out] of layerOut) {
              poolWords(r.states.get(l)!, hidden, spans[s]!, identity.pooling, rows, 0);
              out.writeRows(sentenceMap[s]![1], rows);
            }
          }
          for (const [l, out] of pieceOut) out.writeRows(pieceOffsets[r.index]!, r.states.get(l)!);
          if (!r.attentions) return;
          for (const [l, m] of attnOut) m.set(s, { data: wordAttention(r.attentions.get(l)!, cfg.numAttentionHeads, r.numPieces, spans[s]!), shape: [cfg.numAttentionHeads, W + 2, W + 2] });
          for (const [l, m] of rawOut) m.set(s, { data: r.attentions.get(l)!, shape: [cfg.numAttentionHeads, r.numPieces, r.numPieces] });
        };
        await forwardSentences(await getEngine(), encs, {
          hiddenStates: union(layers, pieces),
          attentions: attnLayers,
          batchSize,
          padId: tok.padId,
          maxPositions: cfg.maxPositionEmbeddings,
          onSentence: (r) => {
            const tp = performance.now();
            try {
              poolSentence(r);
            } finally {
              poolSeconds += (performance.now() - tp) / 1000;
            }
          },
          onBatch: (t, fs, copySeconds) => {
            tokens += t;
            forwardSeconds += fs;
            poolSeconds += copySeconds;
            const secs = (performance.now() - t0) / 1000;
            bar.increment(0, { rate: secs > 0 ? Math.round(tokens / secs) : '-' });
          },
        });
        // Made final in this order (a resumed run looks at each file on its own).
        const writers = [
          ...[...attnOut].map(([l, m]) => open(attentionShardFile(dir, index, attnName(l), k, m))),
          ...[...rawOut].map(([l, m]) => open(attentionShardFile(dir, index, rawAttnName(l), k, m))),
          ...layerOut.values(),
          ...pieceOut.values(),
        ];
        await committed();
        committing = commitShard(k, writers, sh.sentences);
        handedOff = true;
        // Failures surface at the next await of `committing` (next shard or the end), not as unhandled.
        committing.catch(() => undefined);
      } finally {
        if (!handedOff) for (const w of opened) w.discard();
      }
    }
    await committed();
  } finally {
    // On a failure elsewhere, the shard being made final still ends before the store lock is released.
    await committing?.catch(() => undefined);
    bar.stop();
    removeHook();
  }
  const seconds = (performance.now() - t0) / 1000;
  const attentionSkipped = wordAttn.length + rawAttn.length > 0 ? windowed.length : 0;
  if (windowed.length) {
    ui.warn(`${windowed.length} sentence(s) longer than the model's ${cfg.maxPositionEmbeddings} positions: hidden states from overlapping windows (stride ${identity.window.stride} pieces)${attentionSkipped ? `; their attention was skipped` : ''}`);
  }
  if (emptyWords) ui.warn(`${emptyWords} word(s) gave no word piece; their vectors are zeros`);
  const report: ExtractReport = {
    dir, sentences: n, computedSentences: computed, tokens, seconds, forwardSeconds, tokenizeSeconds, poolSeconds, writeSeconds,
    tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
    shardsWritten, shardsReused, windowed: windowed.length, attentionSkipped, emptyWords,
  };
  // A --shard K/N store is one part of a whole; open it alone (probes combine parts with openStore).
  const store = shard.count === 1 ? openStore([dir]) : openPart(dir);
  return { store, report };
}

/** Open a single --shard K/N part on its own (no coverage check), e.g. to report on it. */
function openPart(dir: string): ActivationStore {
  const index = readIndex(dir)!;
  return new ActivationStore([{ dir, index, base: 0 }]);
}

function clearStore(dir: string): void {
  for (const e of readdirSync(dir)) {
    if (e === INDEX_FILE || /^(layer|attn|rawattn|pieces)\.\d+$/.test(e)) rmSync(join(dir, e), { recursive: true, force: true });
  }
}
