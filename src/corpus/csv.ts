import { parse } from 'csv-parse/sync';
import { InputError } from '../util/errors.js';
import type { Sentence } from './types.js';
import { countSkip, emptyResult, type ReadResult, type SourceText } from './source.js';

/**
 * CSV/TSV with a header row (csv-parse). `textColumn` (default: `text`, else `sentence`, else
 * the only column) holds the sentence, split on whitespace; `labelColumn` (default: `label`
 * when present) the class. The delimiter is a tab for `.tsv`/`.tab` files, else a comma.
 */
export interface CsvOptions {
  textColumn?: string;
  labelColumn?: string;
  delimiter?: string;
}

export function readCsv(src: SourceText, opts: CsvOptions = {}): ReadResult {
  const delimiter = opts.delimiter ?? (/\.(tsv|tab)$/i.test(src.name) ? '\t' : ',');
  let rows: string[][];
  let lines: number[];
  try {
    const recs = parse(src.text, { delimiter, relax_column_count: false, skip_empty_lines: true, bom: true, info: true }) as unknown as { record: string[]; info: { lines: number } }[];
    rows = recs.map((r) => r.record);
    lines = recs.map((r) => r.info.lines);
  } catch (err) {
    const e = err as { message: string; lines?: number; code?: string; record?: unknown[]; columns?: unknown[] };
    throw new InputError('malformed CSV', {
      file: src.name,
      line: e.lines,
      expected: `${delimiter === '\t' ? 'tab' : 'comma'}-separated rows with the header's column count and balanced quotes`,
      found:
        e.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' && e.record
          ? `${e.record.length} fields where the header has ${e.columns?.length ?? /expect (\d+)/.exec(e.message)?.[1] ?? '?'}`
          : e.message.replace(/^Invalid (Record Length|Closing Quote|Opening Quote):\s*/i, ''),
      fix: 'quote fields that contain the delimiter, and give every row the same columns',
    });
  }
  if (rows.length < 2) throw new InputError('no rows', { file: src.name, line: 1, expected: 'a header row and at least one data row', found: `${rows.length} row(s)`, fix: 'add the header (e.g. "text,label") and data rows' });
  const header = rows[0]!.map((h) => h.trim());
  const pick = (want: string | undefined, fallbacks: string[], what: string, required: boolean): number => {
    if (want !== undefined) {
      const i = header.indexOf(want);
      if (i < 0) throw new InputError(`no ${what} column "${want}"`, { file: src.name, line: 1, expected: `a header naming "${want}"`, found: `columns ${header.map((h) => JSON.stringify(h)).join(', ')}`, fix: `pass --${what}-column with one of those names` });
      return i;
    }
    for (const f of fallbacks) {
      const i = header.indexOf(f);
      if (i >= 0) return i;
    }
    if (required && header.length === 1) return 0;
    if (required) throw new InputError(`which column holds the ${what}?`, { file: src.name, line: 1, expected: `a column named ${fallbacks.map((f) => JSON.stringify(f)).join(' or ')}`, found: `columns ${header.map((h) => JSON.stringify(h)).join(', ')}`, fix: `pass --${what}-column NAME` });
    return -1;
  };
  const ti = pick(opts.textColumn, ['text', 'sentence'], 'text', true);
  const li = pick(opts.labelColumn, ['label'], 'label', false);
  const out = emptyResult();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    const text = row[ti]!.trim();
    if (!text) {
      countSkip(out, 'rows with empty text');
      continue;
    }
    const s: Sentence = { id: `${src.name}:${lines[r]}`, source: { file: src.name, line: lines[r]! }, words: text.split(/\s+/), text };
    if (li >= 0) s.label = row[li]!;
    out.sentences.push(s);
  }
  if (!out.sentences.length) throw new InputError('no sentences', { file: src.name, expected: 'rows with text', found: 'only empty text cells', fix: 'check --text-column' });
  return out;
}
