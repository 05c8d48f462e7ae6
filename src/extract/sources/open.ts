import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Corpus } from '../../corpus/types.js';
import { InputError } from '../../util/errors.js';
import type { ActivationSource } from '../request.js';
import { openStore } from '../store.js';
import { hdf5SentenceCount, Hdf5Source, type Hdf5Options } from './hdf5.js';
import { subsetSource } from './subset.js';

export interface OpenActivationsOptions extends Hdf5Options {
  /**
   * The split `corpus` was kept from and the position of each kept sentence in it: features that
   * cover the whole split (a structural-probes file of the whole treebank, a store extracted from
   * the whole split) are read through those positions.
   */
  whole?: { corpus: Corpus; positions: readonly number[] };
}

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * `--activations PATH`: features computed elsewhere, for one corpus split. PATH is a store folder
 * in our format (docs/store-format.md; several `--shard K/N` folders are one store), or a
 * structural-probes .hdf5 file. Sentence and word counts (and shapes) are checked against the
 * corpus here, so a mismatch is a clear exit-2 error before any training.
 */
export async function openActivations(path: string | readonly string[], corpus: Corpus, opts: OpenActivationsOptions = {}): Promise<ActivationSource> {
  const { whole, ...rest } = opts;
  if (whole && whole.corpus.sentences.length !== corpus.sentences.length) {
    const n = await sentenceCount(path);
    if (n !== null && n !== corpus.sentences.length && n >= whole.corpus.sentences.length) {
      return subsetSource(await openActivations(path, whole.corpus, rest), whole.positions);
    }
  }
  return openOne(path, corpus, rest);
}

/** Sentences the features at `path` hold, when it can be told cheaply (a store's index, an hdf5 file's datasets). */
async function sentenceCount(path: string | readonly string[]): Promise<number | null> {
  const paths = (typeof path === 'string' ? [path] : [...path]).map((p) => resolve(p));
  if (!paths.every((p) => existsSync(p))) return null;
  if (paths.length === 1 && statSync(paths[0]!).isFile()) return isHdf5(paths[0]!) ? hdf5SentenceCount(paths[0]!) : null;
  try {
    const store = openStore(paths);
    await store.close();
    return store.numSentences;
  } catch {
    return null;
  }
}

async function openOne(path: string | readonly string[], corpus: Corpus, opts: Hdf5Options): Promise<ActivationSource> {
  const paths = (typeof path === 'string' ? [path] : [...path]).map((p) => resolve(p));
  const fix = 'pass a store folder (bert-probe extract, or docs/store-format.md) or a structural-probes .hdf5 file';
  if (paths.length === 0) throw new InputError('no activations given', { expected: 'a store folder or an .hdf5 file', found: 'nothing', fix });
  for (const p of paths) if (!existsSync(p)) throw new InputError('activations not found', { file: p, expected: 'a store folder or an .hdf5 file', found: 'nothing there', fix });
  const files = paths.filter((p) => statSync(p).isFile());
  if (files.length > 0) {
    if (paths.length > 1) throw new InputError('several activation paths must all be store folders (--shard K/N parts)', { file: files[0], expected: 'folders', found: 'a file', fix: 'pass one .hdf5 file per split' });
    if (!isHdf5(files[0]!)) throw new InputError('not an activation store or an HDF5 file', { file: files[0], expected: 'a store folder, or an HDF5 file (signature \\x89HDF)', found: 'another kind of file', fix });
    return Hdf5Source.open(files[0]!, corpus, opts);
  }
  const store = openStore(paths);
  checkCounts(store.wordCounts, corpus, paths.join(', '), 'the activation store', opts.allowLonger);
  store.checkShapes();
  return store;
}

/** Sentence count and every sentence's word count equal the corpus's, or exit 2 naming the first difference. */
export function checkCounts(wordCounts: readonly number[], corpus: Corpus, file: string, what: string, allowLonger = false): void {
  const N = corpus.sentences.length;
  if (wordCounts.length !== N && !(allowLonger && wordCounts.length > N)) {
    throw new InputError(`${what} holds ${wordCounts.length} sentences; the corpus ${corpus.id} has ${N}`, { file, expected: `${N} sentences (${corpus.id}, in corpus order)`, found: `${wordCounts.length}`, fix: 'point --activations at features of this corpus split (the same sentences, in the same order, without --limit unless the features were made with it)' });
  }
  for (let s = 0; s < N; s++) {
    const sent = corpus.sentences[s]!;
    if (wordCounts[s] !== sent.words.length) {
      throw new InputError(`sentence ${s} (${sent.id}, ${sent.source.file}:${sent.source.line}) has ${sent.words.length} words in the corpus but ${wordCounts[s]} in ${what}`, { file, expected: `${sent.words.length} word vectors`, found: `${wordCounts[s]}`, fix: 'compute the features from the same corpus file with the same word tokenization' });
    }
  }
}

function isHdf5(path: string): boolean {
  const head = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  try {
    // The superblock sits at 0, or after a user block at 512, 1024, 2048, ... (HDF5 spec §2.2).
    for (let at = 0; at < statSync(path).size; at = at === 0 ? 512 : at * 2) {
      if (readSync(fd, head, 0, 8, at) === 8 && head.equals(HDF5_MAGIC)) return true;
      if (at > 1 << 20) break;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}
