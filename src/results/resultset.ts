import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { cpus, platform, release, arch } from 'node:os';
import { join, resolve, basename } from 'node:path';
import { tempPathFor, writeFileAtomic, writeJsonAtomic, isTempName } from '../util/atomic.js';
import { InputError, RuntimeFailure } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { toCsv, type Cell } from './csv.js';
import { renderFigure, type Figure } from './figures.js';
import { collectVersions, readManifest, reproduceCommand, type FigureRecord, type Manifest, type StageRecord } from './manifest.js';
import { writeReport } from './report.js';
import { flattenScalars, formatTable } from './format.js';

/**
 * The one way a command writes its results (DESIGN.md, ResultSet). A probe hands over rows,
 * per-sentence predictions, figures and a summary; this writes
 *
 *   results/<command>-<model>-<data>-<UTC time>/   (or --out)
 *     results.csv        the rows, columns in the order the probe declared them
 *     summary.json       the probe's summary (also printed on stdout with --json)
 *     manifest.json      command line, model/data identity, seed, versions, timings
 *     predictions.jsonl  one JSON object per line, where the probe predicts per sentence
 *     <figure>.svg       each figure
 *     report.html        everything above in one self-contained page
 *
 * Every file goes to a temporary name first and is renamed into place, so a killed run never
 * leaves a half-written file under a final name. manifest.json is kept current during the run
 * (status 'running', stages so far), so a killed or failed run still says what it did.
 */
export interface ResultSetOptions {
  command: string;
  modelId: string;
  dataId: string;
  /** --out; default results/<command>-<model>-<data>-<UTC timestamp> under the working directory. */
  out?: string;
  force?: boolean;
  /** The full command line (process.argv form); default process.argv. */
  argv?: string[];
  seed?: number;
  ui: Ui;
  /** --json: print summary.json on stdout at finish (and nothing else there). */
  json?: boolean;
}

/** Turn a model or data id (hub id, path, random:CONFIG) into a short file-name-safe part. */
export function sanitizeId(id: string): string {
  let s = id.trim();
  if (/^(\/|\.{1,2}\/|~\/|[A-Za-z]:[\\/])/.test(s)) s = basename(s.replace(/[\\/]+$/, '')) || 'root';
  s = s
    .replace(/[\\/]+/g, '_')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  if (s.length > 48) s = s.slice(0, 48).replace(/[-._]+$/, '');
  return s || 'unnamed';
}

/** UTC time as 20261125T032500Z (sortable, no characters file systems dislike). */
export function utcStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const FIGURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const RESERVED = new Set(['results', 'summary', 'manifest', 'predictions', 'report']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function mergeInto(target: Record<string, unknown>, fields: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(fields)) {
    if (isPlainObject(v) && isPlainObject(target[k])) mergeInto(target[k] as Record<string, unknown>, v);
    else target[k] = v;
  }
}

/** JSON for predictions: typed arrays as arrays, non-finite numbers as null. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

/** Environment variables that change what a run reads (never tokens or secrets). */
const RECORDED_ENV = ['BERT_PROBE_DATA_MIRROR', 'BERT_PROBE_CACHE', 'BERT_PROBE_OFFLINE', 'HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HF_HUB_OFFLINE'];

/**
 * Runs that have not finished. When the process exits without finish() (an error the CLI
 * caught and turned into an exit code, or process.exit), their manifest says so: status
 * 'failed' with a non-zero exit code, else 'unfinished'. One listener for all of them.
 */
const open = new Set<ResultSet>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', (code) => {
    for (const rs of open) rs.markAbandoned(code || Number(process.exitCode ?? 0));
  });
}

export class ResultSet {
  readonly dir: string;
  private readonly ui: Ui;
  private readonly json: boolean;
  private readonly manifest: Manifest;
  private readonly t0: number;
  private readonly written = new Set<string>();
  private readonly figures = new Map<string, { record: FigureRecord; done: Promise<void>; error?: unknown }>();
  private finished = false;

  /** Use createResultSet. */
  constructor(dir: string, opts: ResultSetOptions) {
    this.dir = dir;
    this.ui = opts.ui;
    this.json = opts.json ?? Boolean(opts.ui.opts.json);
    this.t0 = performance.now();
    const argv = opts.argv ?? process.argv;
    const environment: Record<string, string> = {};
    for (const k of RECORDED_ENV) if (process.env[k] !== undefined) environment[k] = process.env[k]!;
    this.manifest = {
      tool: 'bert-probe',
      manifestVersion: 1,
      command: opts.command,
      argv: [...argv],
      reproduce: reproduceCommand(argv),
      cwd: process.cwd(),
      status: 'running',
      startedAt: new Date().toISOString(),
      finishedAt: null,
      seconds: null,
      seed: opts.seed ?? null,
      model: { id: opts.modelId },
      data: { id: opts.dataId },
      stages: [],
      files: [],
      figures: [],
      columns: null,
      versions: collectVersions(),
      platform: { os: platform(), release: release(), arch: arch(), cpus: cpus().length },
      environment,
    };
    this.saveManifest();
    open.add(this);
    installExitHook();
  }

  /** @internal Called at process exit for a run that never reached finish(). */
  markAbandoned(exitCode: number): void {
    open.delete(this);
    try {
      if (this.manifest.status === 'running') this.manifest.status = exitCode ? 'failed' : 'unfinished';
      this.manifest.finishedAt = new Date().toISOString();
      this.manifest.seconds = Number(((performance.now() - this.t0) / 1000).toFixed(3));
      this.manifest.exitCode = exitCode;
      this.saveManifest();
    } catch {
      /* exiting anyway; the manifest written so far stays */
    }
  }

  private file(name: string): string {
    return join(this.dir, name);
  }

  private track(name: string): void {
    this.written.add(name);
    this.manifest.files = [...this.written, 'manifest.json'].filter((v, i, a) => a.indexOf(v) === i).sort();
  }

  private saveManifest(): void {
    this.track('manifest.json');
    writeJsonAtomic(this.file('manifest.json'), this.manifest);
  }

  /**
   * Merge fields into manifest.json: model {id, path, weightsSha256, randomInit}, data {id,
   * sha256, splits}, engine, backend, anything the run should record. Plain objects merge
   * key by key, so model details can be added as they become known.
   */
  setManifest(fields: Record<string, unknown>): void {
    mergeInto(this.manifest as unknown as Record<string, unknown>, fields);
    this.saveManifest();
  }

  /** Run one stage of the command, timed; manifest.json records its seconds and outcome. */
  async stage<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const rec: StageRecord = { name, startedAt: new Date().toISOString(), seconds: null, status: 'running' };
    this.manifest.stages.push(rec);
    this.saveManifest();
    const t = performance.now();
    try {
      const out = await fn();
      rec.status = 'ok';
      return out;
    } catch (err) {
      rec.status = 'failed';
      rec.error = err instanceof Error ? err.message : String(err);
      this.manifest.status = 'failed';
      throw err;
    } finally {
      rec.seconds = Number(((performance.now() - t) / 1000).toFixed(3));
      this.saveManifest();
    }
  }

  /**
   * Write results.csv: one row per object, the columns in the order given (the header is
   * exactly `columns`). Each call replaces the file with the rows given, so a probe can also
   * write partial results as it goes. `descriptions` documents the columns in the manifest
   * and the report.
   */
  writeRows(rows: readonly Record<string, Cell>[], columns: readonly string[], descriptions?: Record<string, string>): void {
    const csv = toCsv(rows, columns);
    writeFileAtomic(this.file('results.csv'), csv);
    this.track('results.csv');
    this.manifest.columns = [...columns];
    if (descriptions) this.manifest.columnDescriptions = { ...descriptions };
    this.manifest.rows = rows.length;
    this.saveManifest();
  }

  /**
   * A second CSV table beside results.csv (e.g. `purity.csv`, `relations.csv`), written the same
   * way; its columns are listed in the manifest under `tables`.
   */
  writeTable(file: string, rows: readonly Record<string, Cell>[], columns: readonly string[], descriptions?: Record<string, string>): void {
    if (!/^[\w.-]+\.csv$/.test(file) || file === 'results.csv') throw new RuntimeFailure(`bad table file name ${file} (results.csv is writeRows')`);
    writeFileAtomic(this.file(file), toCsv(rows, columns));
    this.track(file);
    const tables = (this.manifest.tables ?? {}) as Record<string, { columns: string[]; rows: number; descriptions?: Record<string, string> }>;
    tables[file] = { columns: [...columns], rows: rows.length, ...(descriptions ? { descriptions: { ...descriptions } } : {}) };
    this.manifest.tables = tables;
    this.saveManifest();
  }

  /**
   * Write predictions.jsonl, one JSON value per line, streamed to a temporary file (so it may
   * be larger than memory) and renamed into place when complete. Typed arrays become arrays.
   * Each call replaces the file.
   */
  writePredictions(items: Iterable<unknown>): void {
    const path = this.file('predictions.jsonl');
    const tmp = tempPathFor(path);
    const fd = openSync(tmp, 'w');
    let count = 0;
    try {
      let buf: string[] = [];
      let size = 0;
      const flush = () => {
        const b = Buffer.from(buf.join(''), 'utf8');
        let off = 0;
        while (off < b.byteLength) off += writeSync(fd, b, off, b.byteLength - off);
        buf = [];
        size = 0;
      };
      for (const item of items) {
        const line = JSON.stringify(item, jsonReplacer);
        if (line === undefined) throw new TypeError(`prediction ${count} cannot be written as JSON`);
        buf.push(line, '\n');
        size += line.length + 1;
        count++;
        if (size >= 1 << 20) flush();
      }
      flush();
      fsyncSync(fd);
      closeSync(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
    renameSync(tmp, path);
    this.track('predictions.jsonl');
    this.manifest.predictions = { file: 'predictions.jsonl', count };
    this.saveManifest();
  }

  /**
   * Add a figure, written as <name>.svg and shown in the report with its caption. Rendering
   * starts now and runs alongside the probe; finish() waits for it. A figure that fails to
   * render is reported as a warning and recorded in the manifest; the numbers are kept.
   */
  addFigure(name: string, figure: Figure, caption?: string): void {
    const stem = name.replace(/\.svg$/i, '');
    if (!FIGURE_NAME.test(stem) || RESERVED.has(stem)) {
      throw new TypeError(`figure name '${name}' must match ${FIGURE_NAME} and not be one of ${[...RESERVED].join(', ')}`);
    }
    const record: FigureRecord = { name: stem, file: `${stem}.svg`, ...(caption ? { caption } : {}) };
    const entry: { record: FigureRecord; done: Promise<void>; error?: unknown } = { record, done: Promise.resolve() };
    entry.done = renderFigure(figure)
      .then((svg) => {
        writeFileAtomic(this.file(record.file), svg);
        this.track(record.file);
      })
      .catch((err: unknown) => {
        entry.error = err;
      });
    this.figures.set(stem, entry);
  }

  /**
   * Finish the run: wait for the figures, write summary.json, the final manifest.json and
   * report.html; print a compact table on a TTY (or summary.json on stdout with --json).
   * `table` is the compact summary table (e.g. one row per layer with the headline metrics);
   * without it the summary's scalar fields are shown.
   */
  async finish(summary: Record<string, unknown>, table?: { columns: string[]; rows: Record<string, unknown>[]; title?: string }): Promise<void> {
    if (this.finished) throw new RuntimeFailure('ResultSet.finish called twice');
    this.finished = true;
    open.delete(this);
    const figureErrors: Record<string, string> = {};
    const figures: FigureRecord[] = [];
    for (const [name, entry] of this.figures) {
      await entry.done;
      if (entry.error) {
        const msg = entry.error instanceof Error ? entry.error.message : String(entry.error);
        figureErrors[name] = msg;
        this.ui.warn(`figure ${name} could not be rendered: ${msg}`);
      } else figures.push(entry.record);
    }
    const summaryText = JSON.stringify(summary, jsonReplacer, 2) + '\n';
    writeFileAtomic(this.file('summary.json'), summaryText);
    this.track('summary.json');
    this.manifest.figures = figures;
    if (Object.keys(figureErrors).length) this.manifest.figureErrors = figureErrors;
    if (table) this.manifest.summaryTable = { columns: table.columns, rows: table.rows, ...(table.title ? { title: table.title } : {}) };
    if (this.manifest.status === 'running') this.manifest.status = 'finished';
    this.manifest.finishedAt = new Date().toISOString();
    this.manifest.seconds = Number(((performance.now() - this.t0) / 1000).toFixed(3));
    this.track('report.html');
    this.saveManifest();
    writeReport(this.dir);

    if (this.json) {
      process.stdout.write(summaryText);
    } else if (!this.ui.quiet) {
      if (this.ui.tty) {
        const t = table ?? (() => {
          const flat = flattenScalars(summary);
          return { columns: ['key', 'value'], rows: Object.entries(flat).map(([key, value]) => ({ key, value })) };
        })();
        if (t.rows.length) this.ui.info('\n' + formatTable(t.columns, t.rows, 30) + '\n');
      }
      this.ui.info(`results: ${this.dir}${this.ui.tty ? `\nreport:  ${join(this.dir, 'report.html')}` : ''}`);
    }
  }
}

function isNonEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/**
 * Open the results folder: --out (refusing a non-empty folder without --force) or a new
 * results/<command>-<model>-<data>-<UTC timestamp>/ under the working directory.
 */
export async function createResultSet(opts: ResultSetOptions): Promise<ResultSet> {
  let dir: string;
  if (opts.out !== undefined && opts.out !== '') {
    dir = resolve(opts.out);
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) {
        throw new InputError(`--out ${opts.out} is a file, not a folder`, {
          file: opts.out,
          expected: 'a new or empty folder for the results',
          found: 'an existing file',
          fix: 'choose another --out path',
        });
      }
      if (isNonEmptyDir(dir)) {
        if (!opts.force) {
          throw new InputError(`results folder ${opts.out} already exists and is not empty`, {
            file: opts.out,
            expected: 'a new or empty folder (results are never overwritten silently)',
            found: `${readdirSync(dir).length} entries, e.g. ${readdirSync(dir).slice(0, 3).join(', ')}`,
            fix: 'choose another --out, remove the folder, or add --force to overwrite it',
          });
        }
        clearPreviousRun(dir);
      }
    }
    mkdirSync(dir, { recursive: true });
  } else {
    const root = resolve('results');
    mkdirSync(root, { recursive: true });
    const stem = `${sanitizeId(opts.command)}-${sanitizeId(opts.modelId)}-${sanitizeId(opts.dataId)}-${utcStamp()}`;
    for (let i = 1; ; i++) {
      const candidate = join(root, i === 1 ? stem : `${stem}-${i}`);
      try {
        mkdirSync(candidate); // not recursive: fails if another run took the name this second
        dir = candidate;
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 1000) throw err;
      }
    }
  }
  return new ResultSet(dir, opts);
}

/**
 * With --force: remove what a previous run wrote there (the files its manifest lists, and
 * temporary files left by a killed run), so no stale figure or predictions file survives
 * next to the new results. Other files are left alone.
 */
function clearPreviousRun(dir: string): void {
  const known = new Set(['results.csv', 'summary.json', 'manifest.json', 'predictions.jsonl', 'report.html']);
  try {
    for (const f of readManifest(join(dir, 'manifest.json')).files ?? []) known.add(f);
  } catch {
    /* no previous manifest */
  }
  for (const name of readdirSync(dir)) {
    if ((known.has(name) || isTempName(name)) && !name.includes('/') && statSync(join(dir, name)).isFile()) rmSync(join(dir, name), { force: true });
  }
}
