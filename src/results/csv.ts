import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { InputError } from '../util/errors.js';

/**
 * results.csv: one header line with the columns in the order the probe gave them, then one
 * line per row (RFC 4180 quoting by csv-stringify, '\n' line ends). Missing values and null
 * are written as empty cells; booleans as true/false; numbers in JavaScript's shortest
 * round-trip form, so the file reads back to the same numbers.
 */
export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

const COLUMN_NAME = /^[a-z][a-z0-9_.]*$/;

/** Column names are part of the interface pipelines read; keep them machine-friendly. */
export function checkColumns(columns: readonly string[]): void {
  if (columns.length === 0) throw new TypeError('results.csv needs at least one column');
  const seen = new Set<string>();
  for (const c of columns) {
    if (!COLUMN_NAME.test(c)) {
      throw new TypeError(`results.csv column '${c}' must match ${COLUMN_NAME} (lower case, digits, '_' and '.')`);
    }
    if (seen.has(c)) throw new TypeError(`results.csv column '${c}' is given twice`);
    seen.add(c);
  }
}

export function formatCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

export function toCsv(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  checkColumns(columns);
  const known = new Set(columns);
  rows.forEach((row, i) => {
    for (const key of Object.keys(row)) {
      if (!known.has(key)) throw new TypeError(`row ${i} has column '${key}' that is not in the declared columns (${columns.join(', ')})`);
    }
  });
  const records = rows.map((row) => columns.map((c) => formatCell(row[c])));
  return stringify([columns as string[], ...records], { record_delimiter: 'unix' });
}

export interface CsvTable {
  columns: string[];
  rows: Record<string, string>[];
}

/** Read a results.csv back (cells stay strings; see `parseCell`). */
export function readCsv(path: string): CsvTable {
  const text = readFileSync(path, 'utf8');
  let records: string[][];
  try {
    records = parse(text, { relax_column_count: false, skip_empty_lines: true }) as string[][];
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw new InputError(`cannot read ${path} as CSV`, {
      file: path,
      line: e.lines,
      expected: 'a results.csv written by bert-probe (a header line, then rows with as many cells)',
      found: e.message,
      fix: 'rerun the command that wrote this folder',
    });
  }
  if (records.length === 0) {
    throw new InputError(`empty CSV file`, { file: path, line: 1, expected: 'a header line', found: 'nothing', fix: 'rerun the command that wrote this folder' });
  }
  const [columns, ...body] = records;
  return {
    columns,
    rows: body.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]]))),
  };
}

/** A CSV cell back to a number where it is one, else the string ('' stays ''). */
export function parseCell(s: string): string | number {
  if (s === '') return s;
  if (s === 'NaN') return NaN;
  if (s === 'Infinity') return Infinity;
  if (s === '-Infinity') return -Infinity;
  const n = Number(s);
  return Number.isFinite(n) && /^[-+]?(\d|\.\d)/.test(s) ? n : s;
}
