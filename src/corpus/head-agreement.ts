import { InputError } from '../util/errors.js';
import type { Sentence } from './types.js';

/**
 * Agreement of converted heads with a reference conversion of the same PTB trees, as dependency
 * conversions are compared: the share of words whose head is the same, counted over
 * non-punctuation words. Punctuation is what Yamada & Matsumoto's ptbconv and the Penn2Malt /
 * CoNLL evaluations leave out: the tags `` '' , . : (ptbconv 3.0, kamigaito/ptbconv-3.0 d25f298,
 * lib/ruby/natural_language/corpus/penn_treebank/pos.rb, class Punctuation). All words are counted
 * too, as a second figure.
 *
 * References are keyed `wsj_NNNN#K` (K-th tree of treebank file wsj_NNNN, 1-based), read from
 *   - `.dp` files (NLTK's dependency_treebank, or `ptbconv -D` output): one word a line,
 *     `word<TAB>tag<TAB>head[<TAB>label]`, a blank line after each sentence, root head 0 or -1;
 *   - a heads table: `wsj_NNNN#K<TAB>h1 h2 …` per line, `#` comment lines.
 */
export const PTB_PUNCT_TAGS: ReadonlySet<string> = new Set(['``', "''", ',', '.', ':']);

export interface RefSentence {
  heads: number[];
  /** Tags as the reference wrote them (`.dp` files only). */
  tags?: string[];
}

export interface Agreement {
  sentences: number;
  /** Non-punctuation words with the reference head / all non-punctuation words. */
  agree: number;
  words: number;
  /** The same over every word. */
  agreeAll: number;
  wordsAll: number;
  /** Sentences of the corpus with no reference, and references whose length differs. */
  missing: string[];
  misaligned: string[];
}

/** `wsj_NNNN#K` for a sentence read from `…/wsj_NNNN.mrg` (its id ends in `wsj_NNNN.mrg#K`). */
export function ptbKey(id: string): string | undefined {
  const m = /(wsj_\d{4})\.mrg#(\d+)$/.exec(id);
  return m ? `${m[1]}#${m[2]}` : undefined;
}

/** Read one `.dp` file of treebank file `fileId` (`wsj_0001`). */
export function readDp(text: string, fileId: string, file = `${fileId}.dp`): Map<string, RefSentence> {
  const out = new Map<string, RefSentence>();
  let heads: number[] = [];
  let tags: string[] = [];
  const flush = () => {
    if (heads.length) out.set(`${fileId}#${out.size + 1}`, { heads, tags });
    heads = [];
    tags = [];
  };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) return flush();
    const cols = line.split('\t');
    const h = Number(cols[2]);
    if (cols.length < 3 || !Number.isInteger(h) || h < -1)
      throw new InputError('not a .dp dependency line', { file, line: i + 1, expected: 'word<TAB>tag<TAB>head (an integer, -1 or 0 for the root)', found: JSON.stringify(line.slice(0, 60)), fix: 'point at NLTK dependency_treebank .dp files or ptbconv -D output' });
    tags.push(cols[1]!);
    heads.push(h === -1 ? 0 : h);
  });
  flush();
  return out;
}

/** Read a heads table (`wsj_NNNN#K<TAB>h1 h2 …`). */
export function readHeadsTable(text: string, file = 'heads table'): Map<string, RefSentence> {
  const out = new Map<string, RefSentence>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const [key, hs] = line.split('\t');
    const heads = (hs ?? '').split(' ').map(Number);
    if (!key || !/^wsj_\d{4}#\d+$/.test(key) || !heads.length || heads.some((h) => !Number.isInteger(h) || h < 0))
      throw new InputError('not a heads-table line', { file, line: i + 1, expected: 'wsj_NNNN#K<TAB>space-separated heads (0 = root)', found: JSON.stringify(line.slice(0, 60)), fix: 'regenerate the table' });
    out.set(key, { heads });
  });
  return out;
}

/** Compare the heads of `sentences` (PTB sentences with ids ending `wsj_NNNN.mrg#K`) with `refs`. */
export function headAgreement(sentences: readonly Sentence[], refs: ReadonlyMap<string, RefSentence>): Agreement {
  const a: Agreement = { sentences: 0, agree: 0, words: 0, agreeAll: 0, wordsAll: 0, missing: [], misaligned: [] };
  for (const s of sentences) {
    const key = ptbKey(s.id);
    const ref = key ? refs.get(key) : undefined;
    if (!key || !ref) {
      a.missing.push(s.id);
      continue;
    }
    const heads = s.heads ?? [];
    if (ref.heads.length !== heads.length) {
      a.misaligned.push(key);
      continue;
    }
    a.sentences++;
    ref.heads.forEach((h, i) => {
      const same = h === heads[i] ? 1 : 0;
      a.agreeAll += same;
      a.wordsAll++;
      if (PTB_PUNCT_TAGS.has(ref.tags?.[i] ?? s.xpos?.[i] ?? '')) return;
      a.agree += same;
      a.words++;
    });
  }
  return a;
}
