import { InputError } from '../util/errors.js';
import { readConll } from './conllu.js';
import { readCsv } from './csv.js';
import type { HeadScheme } from './headrules.js';
import { readIob } from './iob.js';
import { readPtb } from './ptb.js';
import { readSemcor } from './semcor.js';
import { readText } from './text.js';
import { emptyResult, splitLines, type ReadResult, type SourceText } from './source.js';

/** Every format name `--format` accepts, and the reader behind it. */
export const FORMATS = ['conllu', 'conllx', 'conllup', 'ptb', 'iob1', 'iob2', 'bioes', 'semcor', 'text', 'lines', 'csv', 'tsv'] as const;
export type FormatName = (typeof FORMATS)[number];

export interface ParseOptions {
  headRules?: HeadScheme;
  textColumn?: string;
  labelColumn?: string;
  /** NER: repair I- after O with a warning instead of failing. */
  lenient?: boolean;
  /** Sentence label for line-per-sentence corpora. */
  label?: string;
}

export function checkFormat(format: string): FormatName {
  if ((FORMATS as readonly string[]).includes(format)) return format as FormatName;
  throw new InputError(`unknown format "${format}"`, { expected: FORMATS.join(', '), found: JSON.stringify(format), fix: 'pass --format with one of these' });
}

/**
 * Guess the format from the file name, then from the content where the extension is ambiguous
 * (`.conll` is CoNLL-X with 10 columns, else NER; `.conllu` with more than 10 columns is
 * CoNLL-U Plus; SemCor tag files start with `<contextfile`).
 */
export function sniffFormat(name: string, text: string): FormatName {
  const lower = name.toLowerCase();
  const firstWordLine = () => splitLines(text.slice(0, 20000)).find((l) => l.trim() && !l.startsWith('#') && !l.startsWith('-DOCSTART-'));
  const cols = () => (firstWordLine() ?? '').split('\t').length;
  if (/\.conllu$/.test(lower)) return cols() > 10 ? 'conllup' : 'conllu';
  if (/\.(conllx)$/.test(lower)) return 'conllx';
  if (/\.(conll|conll0[0-9]|annotated)$/.test(lower)) return cols() === 10 ? 'conllx' : 'iob2';
  if (/\.(iob2?|bio|ner)$/.test(lower)) return 'iob2';
  if (/\.iob1$/.test(lower)) return 'iob1';
  if (/\.(bioes|iobes)$/.test(lower)) return 'bioes';
  if (/\.(mrg|tree|trees|ptb)$/.test(lower)) return 'ptb';
  if (/\.csv$/.test(lower)) return 'csv';
  if (/\.(tsv|tab)$/.test(lower)) return 'tsv';
  if (/\.txt$/.test(lower)) return sniffContent(text) ?? 'text';
  const head = text.trimStart().slice(0, 200);
  if (head.startsWith('<contextfile') || head.startsWith('<context ') || head.startsWith('<s snum')) return 'semcor';
  if (head.startsWith('(')) return 'ptb';
  throw new InputError('cannot tell the corpus format', {
    file: name,
    expected: 'an extension (.conllu .conllx .conll .iob2 .bioes .mrg .txt .csv .tsv) or SemCor/PTB content',
    found: JSON.stringify(name.split('/').pop()),
    fix: `pass --format (${FORMATS.join(', ')})`,
  });
}

/**
 * A file whose name says nothing (or says `.txt`) but whose content is a treebank: CoNLL-U /
 * CoNLL-X (10 tab-separated columns, the first a word index) or PTB brackets (issue 15: a
 * CoNLL-U file named `.txt` was read as plain text).
 */
function sniffContent(text: string): FormatName | undefined {
  const first = splitLines(text.slice(0, 20000)).find((l) => l.trim() && !l.startsWith('#'));
  if (!first) return undefined;
  const cols = first.split('\t');
  if (cols.length === 10 && /^\d+(-\d+|\.\d+)?$/.test(cols[0]!)) return 'conllu';
  if (/^\(\s*\(/.test(first.trimStart())) return 'ptb';
  return undefined;
}

export function parseSource(src: SourceText, format: FormatName, opts: ParseOptions, result: ReadResult = emptyResult()): ReadResult {
  let r: ReadResult;
  switch (format) {
    case 'conllu':
    case 'conllx':
    case 'conllup':
      r = readConll(src, format);
      break;
    case 'ptb':
      return readPtb(src, opts.headRules ?? 'stanford', src.name, result);
    case 'iob1':
    case 'iob2':
    case 'bioes':
      r = readIob(src, { scheme: format, strict: !opts.lenient });
      break;
    case 'semcor':
      r = readSemcor(src);
      break;
    case 'text':
    case 'lines':
      r = readText(src, opts.label);
      break;
    case 'csv':
    case 'tsv':
      r = readCsv(src, { textColumn: opts.textColumn, labelColumn: opts.labelColumn, delimiter: format === 'tsv' ? '\t' : undefined });
      break;
  }
  for (const s of r.sentences) result.sentences.push(s);
  for (const [k, v] of Object.entries(r.skipped)) result.skipped[k] = (result.skipped[k] ?? 0) + v;
  result.warnings.push(...r.warnings);
  return result;
}
