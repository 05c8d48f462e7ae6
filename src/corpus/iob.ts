import { InputError } from '../util/errors.js';
import type { LabelledSpan, Sentence } from './types.js';
import { countSkip, emptyResult, splitLines, type ReadResult, type SourceText } from './source.js';

/**
 * NER files in IOB1, IOB2 or BIOES (Ramshaw & Marcus 1995; Tjong Kim Sang & Veenstra 1999;
 * Ratinov & Roth 2009 for BIOES), one token per line, blank (or whitespace-only) line between
 * sentences. Layouts: `token TAB tag`; `token … tag` (CoNLL-2003: tag in the last column);
 * UNER's `.iob2`: `index TAB token TAB tag TAB …` with `# sent_id`/`# text` comments. Columns are
 * tab-separated, or space-separated when a file has no tabs. `-DOCSTART-` lines are skipped and
 * counted.
 *
 * strict (default): an I-X that does not continue an X entity is an error in IOB2/BIOES.
 * lenient: it is repaired (read as B-X) and counted in a warning.
 */
export type IobScheme = 'iob1' | 'iob2' | 'bioes';

export interface IobOptions {
  scheme?: IobScheme;
  strict?: boolean;
}

export function readIob(src: SourceText, opts: IobOptions = {}): ReadResult {
  const scheme = opts.scheme ?? 'iob2';
  const strict = opts.strict ?? true;
  const out = emptyResult();
  const lines = splitLines(src.text);
  const sep = src.text.includes('\t') ? '\t' : ' ';
  let layout: { width: number; tokenCol: number; tagCol: number } | undefined;
  let words: string[] = [];
  let tags: string[] = [];
  let tagLines: number[] = [];
  let comments: string[] = [];
  let start = 0;
  let repaired = 0;
  const flush = () => {
    if (words.length) {
      const s: Sentence = { id: '', source: { file: src.name, line: start }, words, entities: decode(src.name, tags, tagLines, scheme, strict, () => repaired++) };
      for (const c of comments) {
        const m = /^#\s*(sent_id|text)\s*=\s?(.*)$/.exec(c);
        if (m?.[1] === 'sent_id') s.id = m[2]!.trim();
        else if (m?.[1] === 'text') s.text = m[2]!;
      }
      if (comments.length) s.comments = comments;
      if (!s.id) s.id = `${src.name}:${start}`;
      out.sentences.push(s);
    }
    words = [];
    tags = [];
    tagLines = [];
    comments = [];
    start = 0;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (!start) start = i + 1;
    if (!words.length && /^# /.test(line)) {
      comments.push(line);
      continue;
    }
    const cells = sep === '\t' ? line.split('\t') : line.trim().split(/ +/);
    if (cells[0] === '-DOCSTART-') {
      countSkip(out, 'document separators (-DOCSTART-)');
      start = 0;
      continue;
    }
    if (!layout) {
      if (cells.length < 2) throw new InputError('wrong column count', { file: src.name, line: i + 1, expected: 'at least 2 columns: token and tag', found: `${cells.length} column`, fix: 'separate token and tag with a tab' });
      const indexed = cells.length >= 3 && /^\d+$/.test(cells[0]!) && isTag(cells[2]!);
      layout = { width: cells.length, tokenCol: indexed ? 1 : 0, tagCol: indexed ? 2 : cells.length - 1 };
    }
    if (cells.length !== layout.width) {
      throw new InputError('wrong column count', { file: src.name, line: i + 1, expected: `${layout.width} columns, as on the file's first token line`, found: `${cells.length} columns`, fix: 'give every token line the same columns (a missing tag?)' });
    }
    const tag = cells[layout.tagCol]!;
    if (!isTag(tag)) {
      throw new InputError('bad NER tag', { file: src.name, line: i + 1, column: layout.tagCol + 1, expected: scheme === 'bioes' ? 'O, B-TYPE, I-TYPE, E-TYPE or S-TYPE' : 'O, B-TYPE or I-TYPE', found: JSON.stringify(tag), fix: 'fix the tag, or check --format (iob1, iob2, bioes)' });
    }
    words.push(cells[layout.tokenCol]!);
    tags.push(tag);
    tagLines.push(i + 1);
  }
  flush();
  if (!out.sentences.length) throw new InputError('no sentences', { file: src.name, expected: 'token/tag lines', found: 'none', fix: 'check the file and its --format' });
  if (repaired) out.warnings.push(`${src.name}: repaired ${repaired} I- tag${repaired === 1 ? '' : 's'} that did not continue an entity (read as B-)`);
  return out;
}

function isTag(t: string): boolean {
  return t === 'O' || /^[BIES]-\S+$/.test(t);
}

/** Tags → typed spans [start, end). */
export function decode(file: string, tags: string[], lines: number[], scheme: IobScheme, strict: boolean, onRepair: () => void): LabelledSpan[] {
  const spans: LabelledSpan[] = [];
  let cur: LabelledSpan | null = null;
  const close = (end: number) => {
    if (cur) {
      cur.end = end;
      spans.push(cur);
      cur = null;
    }
  };
  for (let i = 0; i < tags.length; i++) {
    const t = tags[i]!;
    if (t === 'O') {
      close(i);
      continue;
    }
    const p = t[0]!;
    const type = t.slice(2);
    if ((p === 'E' || p === 'S') && scheme !== 'bioes') {
      throw new InputError(`${p}- tag in an ${scheme.toUpperCase()} file`, { file, line: lines[i], expected: 'O, B-TYPE or I-TYPE', found: t, fix: 'use --format bioes for BIOES files' });
    }
    const continues = cur !== null && (cur as LabelledSpan).label === type;
    if (p === 'B' || p === 'S') {
      close(i);
      cur = { start: i, end: i + 1, label: type };
      if (p === 'S') close(i + 1);
    } else if (p === 'I' || p === 'E') {
      if (!continues) {
        if (scheme === 'iob1') {
          close(i);
          cur = { start: i, end: i + 1, label: type };
        } else if (strict) {
          const prev = i === 0 ? 'sentence start' : tags[i - 1]!;
          throw new InputError(`${p}- tag does not continue an entity`, {
            file,
            line: lines[i],
            expected: `B-${type} (an ${scheme.toUpperCase()} entity starts with B-${scheme === 'bioes' ? ' or S-' : ''})`,
            found: `${t} after ${prev}`,
            fix: 'fix the tag, or read the file leniently (--lenient) to repair it as B-',
          });
        } else {
          onRepair();
          close(i);
          cur = { start: i, end: i + 1, label: type };
        }
      }
      if (p === 'E') close(i + 1);
    }
  }
  close(tags.length);
  return spans;
}
