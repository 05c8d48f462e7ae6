import { InputError } from '../util/errors.js';
import type { LabelledSpan, Sentence, SrlFrame } from './types.js';
import { countSkip, emptyResult, type ReadResult, type SourceText } from './source.js';
import { assertNoCycle } from './tree-check.js';

/**
 * CoNLL-U (https://universaldependencies.org/format.html), CoNLL-X (Buchholz & Marsi 2006:
 * ID FORM LEMMA CPOSTAG POSTAG FEATS HEAD DEPREL PHEAD PDEPREL) and CoNLL-U Plus as Universal
 * PropBank writes it (10 CoNLL-U columns, column 11 = predicate roleset or `_`, then one
 * argument column per predicate in sentence order; arguments label the argument's head word).
 *
 * Multiword-token ranges (`3-4`) and empty nodes (`5.1`) are not words: they are skipped and
 * counted. Comments are kept; `# sent_id` and `# text` fill id and text.
 */
export type ConllFlavour = 'conllu' | 'conllx' | 'conllup';

export function readConll(src: SourceText, flavour: ConllFlavour): ReadResult {
  const out = emptyResult();
  const text = src.text;
  const intern = new Interner();
  let block: { line: number; text: string }[] = [];
  let comments: string[] = [];
  let startLine = 0;
  const flush = () => {
    if (block.length) out.sentences.push(buildSentence(src.name, flavour, block, comments, startLine, out, intern));
    else if (comments.length) countSkip(out, 'comment-only blocks');
    block = [];
    comments = [];
    startLine = 0;
  };
  // scan line by line with indexOf (no array of all lines: EWT train is 250k lines)
  let lineNo = 0;
  for (let pos = 0; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let line = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '' || line.trim() === '') {
      flush();
      continue;
    }
    if (!startLine) startLine = lineNo;
    if (line.charCodeAt(0) === 35 /* # */) {
      if (block.length) throw new InputError('comment line inside a sentence', { file: src.name, line: lineNo, expected: 'comments only before the first word line', found: line.slice(0, 60), fix: 'move the comment above the sentence or add a blank line' });
      comments.push(flat(line));
      continue;
    }
    block.push({ line: lineNo, text: line });
  }
  flush();
  if (!out.sentences.length) {
    throw new InputError('no sentences', { file: src.name, expected: `${flavour} word lines separated by blank lines`, found: `${lineNo} lines without a word line`, fix: 'check the file and its --format' });
  }
  return out;
}

const TABS = new Int32Array(1024);

/**
 * One string per distinct value of a column (tags, relations and words repeat): a corpus held
 * for a run then costs its vocabulary, not a copy per token, and no kept value is a slice that
 * pins the whole file's text in memory (EWT's three splits: 86 → 31 MiB of heap; issue 9's
 * EWT/PTB training-memory goal).
 */
class Interner {
  private readonly seen = new Map<string, string>();
  get(s: string): string {
    let v = this.seen.get(s);
    if (v === undefined) {
      v = s.length > 12 ? flat(s) : s;
      this.seen.set(v, v);
    }
    return v;
  }
}

/** A copy of `s` that shares no storage with the string it was sliced from. */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

/** Is `s` a run of ASCII digits (no sign, no blanks)? */
function isDigits(s: string, from = 0, to = s.length): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Multiword range `3-4` or empty node `5.1`: the separator character, else 0. */
function idKind(id: string): number {
  const d = id.indexOf('-') >= 0 ? '-' : id.indexOf('.') >= 0 ? '.' : '';
  if (!d) return 0;
  const k = id.indexOf(d);
  return isDigits(id, 0, k) && isDigits(id, k + 1) ? d.charCodeAt(0) : 0;
}

function buildSentence(file: string, flavour: ConllFlavour, block: { line: number; text: string }[], comments: string[], startLine: number, out: ReadResult, intern: Interner): Sentence {
  const words: string[] = [];
  const upos: string[] = [];
  const xpos: string[] = [];
  const rawHeads: string[] = [];
  const deprels: string[] = [];
  const lineOf: number[] = [];
  const senses: string[] = [];
  const argCols: string[][] = [];
  let plusWidth = -1;
  for (const { line, text } of block) {
    const tab = text.indexOf('\t');
    const id = tab < 0 ? text : text.slice(0, tab);
    const kind = idKind(id);
    if (kind === 45 /* - */) {
      countSkip(out, 'multiword tokens');
      continue;
    }
    if (kind === 46 /* . */) {
      countSkip(out, 'empty nodes');
      continue;
    }
    // column boundaries by indexOf; only the columns we keep become strings (EWT train: 200k lines)
    let n = 1;
    TABS[0] = -1;
    for (let t = text.indexOf('\t'); t >= 0; t = text.indexOf('\t', t + 1)) {
      if (n >= TABS.length - 1) break;
      TABS[n++] = t;
    }
    TABS[n] = text.length;
    const col = (k: number) => text.slice(TABS[k]! + 1, TABS[k + 1]);
    if (flavour === 'conllup') {
      if (n < 11) throw columnError(file, line, 'at least 11 tab-separated columns (10 CoNLL-U + predicate sense + one per predicate)', n);
      if (plusWidth < 0) plusWidth = n;
      else if (n !== plusWidth) throw columnError(file, line, `${plusWidth} columns, as on the sentence's first line`, n);
    } else if (n !== 10) {
      throw columnError(file, line, '10 tab-separated columns', n, n > 10 ? ' (for PropBank CoNLL-U Plus use --format conllup)' : '');
    }
    if (id !== String(words.length + 1)) {
      throw new InputError('bad word ID', { file, line, column: 1, expected: `ID ${words.length + 1} (IDs count 1, 2, 3 … within a sentence)`, found: JSON.stringify(id), fix: 'renumber the sentence, or add the missing blank line between sentences' });
    }
    words.push(intern.get(col(1)));
    upos.push(intern.get(col(3))); // CoNLL-X: CPOSTAG
    xpos.push(intern.get(col(4))); // CoNLL-X: POSTAG
    rawHeads.push(col(6));
    deprels.push(intern.get(col(7)));
    if (flavour === 'conllup') {
      senses.push(col(10));
      const args: string[] = [];
      for (let k = 11; k < n; k++) args.push(col(k));
      argCols.push(args);
    }
    lineOf.push(line);
  }
  const n = words.length;
  const allHeadsMissing = rawHeads.every((h) => h === '_');
  let heads: number[] | undefined;
  if (!allHeadsMissing) {
    heads = rawHeads.map((h, i) => {
      const v = isDigits(h) ? Number(h) : NaN;
      if (Number.isNaN(v)) throw new InputError('non-numeric HEAD', { file, line: lineOf[i], column: 7, expected: `an integer 0…${n}`, found: JSON.stringify(h), fix: 'HEAD is the ID of the governing word, 0 for the root' });
      if (v > n) throw new InputError('HEAD out of range', { file, line: lineOf[i], column: 7, expected: `an integer 0…${n} (the sentence has ${n} words)`, found: String(v), fix: 'point HEAD at a word of the same sentence' });
      if (v === i + 1) throw new InputError('word is its own HEAD', { file, line: lineOf[i], column: 7, expected: `a HEAD other than ${v}`, found: String(v), fix: 'point HEAD at another word, or 0 for the root' });
      return v;
    });
    assertNoCycle(heads, file, (w) => lineOf[w]!, words);
  }
  const s: Sentence = { id: '', source: { file, line: startLine }, words };
  for (const c of comments) {
    if (!c.includes('sent_id') && !c.includes('text')) continue;
    const m = /^#\s*(sent_id|text)\s*=\s?(.*)$/.exec(c);
    if (m?.[1] === 'sent_id') s.id = m[2]!.trim();
    else if (m?.[1] === 'text') s.text = m[2]!;
  }
  if (!s.id) s.id = `${file}:${startLine}`;
  if (comments.length) s.comments = comments;
  if (upos.some((u) => u !== '_')) s.upos = upos;
  if (xpos.some((x) => x !== '_')) s.xpos = xpos;
  if (heads) {
    s.heads = heads;
    s.deprels = deprels;
  }
  if (flavour === 'conllup') {
    // Universal PropBank marks sentences it did not annotate with `# propbank = no-up`
    if (comments.some((c) => /^#\s*propbank\s*=\s*no-up/.test(c))) countSkip(out, 'sentences without PropBank annotation (no srl)');
    else s.srl = buildFrames(file, senses, argCols, lineOf);
  }
  return s;
}

function buildFrames(file: string, senses: string[], argCols: string[][], lineOf: number[]): SrlFrame[] {
  const preds: number[] = [];
  senses.forEach((s, i) => s !== '_' && s !== '' && preds.push(i));
  let width = argCols[0]?.length ?? 0;
  // Universal PropBank writes one empty argument column for sentences without predicates
  if (!preds.length && argCols.every((c) => c.every((x) => x === ''))) width = 0;
  if (width !== preds.length) {
    throw new InputError('argument columns do not match predicates', {
      file,
      line: lineOf[preds[0] ?? 0],
      expected: `one argument column per predicate (${preds.length} predicates: 11 + ${preds.length} columns)`,
      found: `${width} argument columns`,
      fix: 'each word with a roleset in column 11 needs its own argument column, in sentence order',
    });
  }
  return preds.map((p, k) => {
    const args: LabelledSpan[] = [];
    for (let w = 0; w < argCols.length; w++) {
      const label = argCols[w]![k]!;
      if (label === '_' || label === '' || label === 'V') continue;
      args.push({ start: w, end: w + 1, label });
    }
    return { predicate: p, sense: senses[p]!, args };
  });
}

function columnError(file: string, line: number, expected: string, found: number, extra = ''): InputError {
  return new InputError('wrong column count', { file, line, expected, found: `${found} column${found === 1 ? '' : 's'}${found === 1 ? ' (spaces instead of tabs?)' : ''}`, fix: `separate columns with single tabs${extra}` });
}
