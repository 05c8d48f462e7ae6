import { InputError } from '../util/errors.js';
import type { Sentence, Tree } from './types.js';
import type { HeadScheme } from './headrules.js';
import { countSkip, emptyResult, type ReadResult, type SourceText } from './source.js';
import { toDependencies } from './headrules.js';

/**
 * Penn Treebank bracketed trees (`.mrg`). Cleanup as is standard before dependency conversion
 * (Collins 1999 §7; Hewitt & Manning 2019 used the Stanford converter on the same cleaned trees):
 * `-NONE-` leaves (traces, null elements) are removed and counted, constituents left empty are
 * removed, function tags and coindexation are stripped from labels (`NP-SBJ-1` → `NP`,
 * `PP-LOC=2` → `PP`) but kept on the node for relation labels, POS tags are kept. A wrapper
 * node with an empty label (`( (S ...) )`) or `ROOT`/`TOP` is unwrapped. Bracket tokens in
 * words are written back as characters (`-LRB-` → `(`) since the words go to a tokenizer; the
 * POS tag keeps `-LRB-`.
 */
export interface PNode {
  /** Category without function tags (`NP`), or the POS tag for a preterminal. */
  cat: string;
  /** Function tags (`SBJ`, `TMP`, `PRD`, …). */
  fun: string[];
  children: PNode[];
  /** 0-based word index for preterminals. */
  word?: number;
}

export interface ParsedTree {
  root: PNode;
  words: string[];
  tags: string[];
  line: number;
}

const WORD_BRACKETS: Record<string, string> = { '-LRB-': '(', '-RRB-': ')', '-LCB-': '{', '-RCB-': '}', '-LSB-': '[', '-RSB-': ']' };

/**
 * Split a raw label into category and function tags. Labels starting with '-' (`-LRB-`, `-NONE-`)
 * are atomic. Of alternative categories (`ADVP|PRT`, the annotators' undecided cases) the first is
 * kept, and a trailing index glued to the category (`S1`) is dropped, as Yamada's ptbconv 3.0 reads
 * labels (kamigaito/ptbconv-3.0 d25f298, lib/ruby/natural_language/corpus/penn_treebank/sparser.rb,
 * SformParser#shift) and CoreNLP's PennTreebankLanguagePack cuts categories at `|`.
 */
export function splitLabel(raw: string): { cat: string; fun: string[] } {
  if (raw.startsWith('-') || raw === '') return { cat: raw, fun: [] };
  const parts = raw.split(/[-=]/);
  let cat = parts[0]!.split('|')[0] || parts[0]!;
  const glued = /^(\D+)\d+$/.exec(cat);
  if (glued) cat = glued[1]!;
  return { cat, fun: parts.slice(1).filter((p) => p && !/^\d+$/.test(p)) };
}

interface RawNode {
  label: string;
  children: RawNode[];
  leaf?: string;
}

/** Parse every tree in the text. Unbalanced brackets → InputError with line and column. */
export function parseBrackets(src: SourceText, result: ReadResult = emptyResult()): ParsedTree[] {
  const text = src.text;
  const trees: ParsedTree[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const stack: { node: RawNode; line: number; col: number }[] = [];
  let treeLine = 0;
  const err = (summary: string, expected: string, found: string, l = line, col = i - lineStart + 1) =>
    new InputError(summary, { file: src.name, line: l, column: col, expected, found, fix: 'balance the brackets of this tree' });
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 10) { line++; i++; lineStart = i; continue; }
    if (c === 32 || c === 9 || c === 13) { i++; continue; }
    if (c === 40 /* ( */) {
      if (!stack.length) treeLine = line;
      const startCol = i - lineStart + 1;
      i++;
      // read label (may be empty)
      let j = i;
      while (j < n && !isDelim(text.charCodeAt(j))) j++;
      const label = text.slice(i, j);
      i = j;
      stack.push({ node: { label, children: [] }, line, col: startCol });
      continue;
    }
    if (c === 41 /* ) */) {
      const top = stack.pop();
      if (!top) throw err('unbalanced brackets', 'an opening "(" before this ")"', 'an extra ")"');
      i++;
      if (stack.length) stack[stack.length - 1]!.node.children.push(top.node);
      else trees.push(finishTree(src.name, top.node, treeLine, result));
      continue;
    }
    // a word token
    let j = i;
    while (j < n && !isDelim(text.charCodeAt(j))) j++;
    const tok = text.slice(i, j);
    if (!stack.length) throw err('text outside a tree', 'a tree starting with "("', JSON.stringify(tok.slice(0, 40)));
    const top = stack[stack.length - 1]!.node;
    if (top.leaf !== undefined || top.children.length) throw err('malformed tree', '"(TAG word)" with one word per leaf', `extra token ${JSON.stringify(tok)} in (${top.label} …)`);
    top.leaf = tok;
    i = j;
  }
  if (stack.length) {
    const open = stack[stack.length - 1]!;
    throw new InputError('unbalanced brackets', { file: src.name, line: open.line, column: open.col, expected: `a ")" closing the "(" opened here (${stack.length} still open at end of file)`, found: 'end of file', fix: 'balance the brackets of this tree' });
  }
  return trees;
}

function isDelim(c: number): boolean {
  return c === 40 || c === 41 || c === 32 || c === 10 || c === 9 || c === 13;
}

function finishTree(file: string, raw: RawNode, line: number, result: ReadResult): ParsedTree {
  let r = raw;
  while ((r.label === '' || r.label === 'ROOT' || r.label === 'TOP') && r.children.length === 1 && r.leaf === undefined) r = r.children[0]!;
  const words: string[] = [];
  const tags: string[] = [];
  const convert = (node: RawNode): PNode | null => {
    if (node.leaf !== undefined) {
      if (node.label === '-NONE-') {
        countSkip(result, 'traces (-NONE-)');
        return null;
      }
      const idx = words.length;
      words.push(WORD_BRACKETS[node.leaf] ?? node.leaf);
      tags.push(node.label);
      return { cat: node.label, fun: [], children: [], word: idx };
    }
    if (!node.children.length) throw new InputError('empty constituent in the source', { file, line, expected: '"(LABEL child …)" or "(TAG word)"', found: `(${node.label})`, fix: 'remove the empty brackets' });
    const kids: PNode[] = [];
    for (const ch of node.children) {
      const k = convert(ch);
      if (k) kids.push(k);
    }
    if (!kids.length) {
      countSkip(result, 'constituents emptied by trace removal');
      return null;
    }
    const { cat, fun } = splitLabel(node.label === '' ? 'X' : node.label);
    return { cat, fun, children: kids };
  };
  const root = convert(r);
  if (!root || !words.length) throw new InputError('tree without words', { file, line, expected: 'at least one word that is not -NONE-', found: 'only traces', fix: 'remove this tree' });
  return { root, words, tags, line };
}

/** The public Tree (labels without function tags, leaves as word indices under their POS). */
export function toTree(n: PNode): Tree {
  if (n.word !== undefined) return { label: n.cat, children: [], word: n.word };
  return { label: n.cat, children: n.children.map(toTree) };
}


/** Read a bracketed file into sentences with tree, XPOS and converted dependencies. */
export function readPtb(src: SourceText, scheme: HeadScheme, idPrefix: string, result: ReadResult = emptyResult()): ReadResult {
  const trees = parseBrackets(src, result);
  if (!trees.length) throw new InputError('no trees', { file: src.name, expected: 'bracketed trees "( (S …) )"', found: 'no "("', fix: 'check the file and its --format' });
  trees.forEach((t, k) => {
    const dep = toDependencies(t, scheme);
    const s: Sentence = {
      id: `${idPrefix}#${k + 1}`,
      source: { file: src.name, line: t.line },
      words: t.words,
      xpos: t.tags,
      heads: dep.heads,
      deprels: dep.deprels,
      tree: toTree(t.root),
    };
    result.sentences.push(s);
  });
  return result;
}
