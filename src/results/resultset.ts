import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, platform, release, arch } from 'node:os';
import { join, resolve, basename } from 'node:path';
import { createHash } from 'node:crypto';
import { acquireLock, processAlive, tempPathFor, writeFileAtomic, writeJsonAtomic, isTempName } from '../util/atomic.js';
import { faultPoint, onInterrupt, SIGNAL_EXIT, type InterruptSignal } from '../util/interrupt.js';
import { stableJson } from '../extract/store.js';
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
  /**
   * --resume: continue an unfinished run (with --out, that folder; without, the newest
   * unfinished results/<command>-<model>-<data>-* folder). A rerun with the same --out resumes
   * without it.
   */
  resume?: boolean;
  /**
   * What must be equal for finished units of an earlier run to be reused (model weights, data
   * hashes, seed, probe options). Recorded in the manifest as a hash.
   */
  identity?: Record<string, unknown>;
}

/** A finished unit of work (one probe on one layer, a baseline): its rows and prediction records. */
export interface UnitPayload {
  rows: Record<string, unknown>[];
  records: unknown[];
}

/** Manifest statuses a rerun may continue from (a live `running` one is another process's). */
const RESUMABLE = new Set(['interrupted', 'failed', 'unfinished', 'running']);
const RUN_LOCK = '.bert-probe-run.lock';
/**
 * 64 KiB set aside in the results folder while a run goes, given back before the last manifest
 * write of a run that fails or is interrupted: on a full disk (ENOSPC) the manifest can still say
 * `failed` instead of staying `running`.
 */
const RESERVE = '.bert-probe-reserve';
const RESERVE_BYTES = 64 * 1024;
const UNITS_DIR = 'units';

function identityHash(identity: Record<string, unknown> | undefined): string | null {
  return identity ? createHash('sha256').update(stableJson(identity)).digest('hex').slice(0, 16) : null;
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
  /** Set once report.html is written: nothing of the run is left to interrupt. */
  private completed = false;
  private readonly identity: string | null;
  /** Units finished in this run or reused from the run it resumes, in the order the command met them. */
  private readonly units = new Map<string, UnitPayload>();
  private readonly resuming: boolean;
  private readonly removeInterruptHook: () => void;
  private releaseRunLock: (() => void) | undefined;

  /** Use createResultSet. */
  constructor(dir: string, opts: ResultSetOptions, resumedFrom?: Manifest, runLock?: () => void) {
    this.dir = dir;
    this.identity = identityHash(opts.identity);
    this.resuming = Boolean(resumedFrom);
    this.releaseRunLock = runLock;
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
      pid: process.pid,
      runIdentity: this.identity,
      ...(resumedFrom
        ? { resumedFrom: { startedAt: resumedFrom.startedAt, status: resumedFrom.status, ...(resumedFrom.interrupted ? { interrupted: resumedFrom.interrupted } : {}) } }
        : {}),
    };
    this.saveManifest();
    try {
      writeFileSync(this.file(RESERVE), Buffer.alloc(RESERVE_BYTES));
    } catch {
      rmSync(this.file(RESERVE), { force: true }); // no room even for this: nothing set aside
    }
    open.add(this);
    installExitHook();
    this.removeInterruptHook = onInterrupt((signal) => this.markInterrupted(signal));
  }

  private unitPath(key: string): string {
    const safe = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
    return this.file(join(UNITS_DIR, `${safe}-${createHash('sha256').update(key).digest('hex').slice(0, 8)}.json`));
  }

  /**
   * The rows and records of unit `key` when this run resumes one that finished it (same
   * identity); undefined when the unit has to be computed. The runner calls this before each
   * unit and skips the unit when it returns something.
   */
  resumed(key: string): UnitPayload | undefined {
    if (this.units.has(key)) return this.units.get(key);
    if (!this.resuming) return undefined;
    const p = this.unitPath(key);
    if (!existsSync(p)) return undefined;
    let saved: { key?: string; identity?: string | null } & Partial<UnitPayload>;
    try {
      saved = JSON.parse(readFileSync(p, 'utf8')) as typeof saved;
    } catch {
      return undefined; // unreadable: compute it again
    }
    if (saved.key !== key || saved.identity !== this.identity || !Array.isArray(saved.rows) || !Array.isArray(saved.records)) return undefined;
    const payload = { rows: saved.rows, records: saved.records };
    this.units.set(key, payload);
    this.manifest.resumedUnits = [...((this.manifest.resumedUnits as string[] | undefined) ?? []), key];
    this.saveManifest();
    return payload;
  }

  /**
   * Record that unit `key` is finished: its rows and prediction records are written to
   * units/<key>.json (atomically), so an interrupted run loses nothing finished and a rerun
   * skips it.
   */
  checkpoint(key: string, payload: UnitPayload): void {
    this.units.set(key, payload);
    writeFileAtomic(this.unitPath(key), JSON.stringify({ key, identity: this.identity, rows: payload.rows, records: payload.records }, jsonReplacer) + '\n');
    this.manifest.unitsFinished = this.units.size;
    this.saveManifest();
  }

  /**
   * @internal SIGINT/SIGTERM: results.csv and predictions.jsonl of the finished units, the
   * manifest marked `interrupted` with the signal and the stage that was running, exit code
   * 130/143, and one line saying how to continue.
   */
  markInterrupted(signal: InterruptSignal): void {
    if (this.completed) return;
    open.delete(this);
    rmSync(this.file(RESERVE), { force: true });
    const stage = [...this.manifest.stages].reverse().find((st) => st.status === 'running');
    if (stage) stage.status = 'interrupted';
    const rows = [...this.units.values()].flatMap((u) => u.rows);
    const records = [...this.units.values()].flatMap((u) => u.records);
    try {
      if (this.manifest.columns && rows.length) this.writeRows(rows as Record<string, Cell>[], this.manifest.columns, this.manifest.columnDescriptions);
      if (records.length) this.writePredictions(records);
    } catch {
      /* keep going: the manifest below is what matters most */
    }
    this.manifest.status = 'interrupted';
    const where = stage?.name ?? (this.finished ? 'write results' : null);
    this.manifest.interrupted = { signal, stage: where, at: new Date().toISOString(), unitsFinished: this.units.size };
    this.manifest.finishedAt = new Date().toISOString();
    this.manifest.seconds = Number(((performance.now() - this.t0) / 1000).toFixed(3));
    this.manifest.exitCode = SIGNAL_EXIT[signal];
    this.saveManifest();
    this.releaseRunLock?.();
    this.ui.error(
      `interrupted${where ? ` during '${where}'` : ''}: ${this.units.size} finished unit(s) kept in ${this.dir}` +
        ` (manifest.json says interrupted). Run the same command with --out ${this.dir} (or --resume) to continue.`,
    );
  }

  /** @internal Called at process exit for a run that never reached finish(). */
  markAbandoned(exitCode: number): void {
    open.delete(this);
    this.releaseRunLock?.();
    rmSync(this.file(RESERVE), { force: true });
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
      await faultPoint(`stage:${name}`);
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
    let total = 0;
    try {
      let buf: string[] = [];
      let size = 0;
      const flush = () => {
        const b = Buffer.from(buf.join(''), 'utf8');
        total += b.byteLength;
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
      if (err && typeof err === 'object') (err as { bytesNeeded?: number; path?: string }).bytesNeeded = total;
      if (err && typeof err === 'object' && !(err as { path?: string }).path) (err as { path?: string }).path = path;
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
    await faultPoint('results');
    this.saveManifest();
    writeReport(this.dir);
    this.completed = true;
    this.removeInterruptHook();
    rmSync(this.file(RESERVE), { force: true });
    rmSync(this.file(UNITS_DIR), { recursive: true, force: true }); // everything is in results.csv / predictions.jsonl now
    this.releaseRunLock?.();
    this.releaseRunLock = undefined;

    if (this.json) {
      // For pipelines: where the results went (issue 15 item 7).
      process.stdout.write(JSON.stringify({ ...summary, out: this.dir }, jsonReplacer, 2) + '\n');
    } else if (!this.ui.quiet && this.ui.tty) {
      const t = table ?? (() => {
        const flat = flattenScalars(summary);
        return { columns: ['key', 'value'], rows: Object.entries(flat).map(([key, value]) => ({ key, value })) };
      })();
      if (t.rows.length) this.ui.info('\n' + formatTable(t.columns, t.rows, 30) + '\n');
    }
    // The last line on stderr names the folder (unless --quiet), also with --json.
    if (!this.ui.quiet) this.ui.info(`${this.ui.tty ? `report:  ${join(this.dir, 'report.html')}\n` : ''}results: ${this.dir}`);
  }
}

/** Entries of a results folder other than a run lock and temporary files. */
function folderEntries(dir: string): string[] {
  try {
    return readdirSync(dir).filter((e) => e !== RUN_LOCK && e !== RESERVE && !isTempName(e));
  } catch {
    return [];
  }
}

function readManifestOrNull(dir: string): Manifest | null {
  try {
    return readManifest(join(dir, 'manifest.json'));
  } catch {
    return null;
  }
}

/** One writer per results folder: a second run given the same --out while one runs is refused. */
async function lockRunFolder(dir: string, given: string): Promise<() => void> {
  const got = await acquireLock(join(dir, RUN_LOCK), { wait: false });
  if (typeof got === 'function') return got;
  throw new InputError(`results folder ${given} is in use by another bert-probe (pid ${got.holder})`, {
    file: given,
    expected: 'a results folder no other run is writing',
    found: `a live run (pid ${got.holder})`,
    fix: 'wait for it to finish, or choose another --out',
  });
}

/** Whether `prev` (the manifest in a folder) is an earlier, unfinished run of this one. */
function resumable(prev: Manifest | null, opts: ResultSetOptions): { ok: true } | { ok: false; why: string } {
  if (!prev) return { ok: false, why: 'it holds no manifest.json of an earlier run' };
  if (prev.command !== opts.command) return { ok: false, why: `it holds a '${prev.command}' run` };
  if (prev.status === 'finished') return { ok: false, why: 'it holds a finished run' };
  if (!RESUMABLE.has(prev.status)) return { ok: false, why: `its run is ${prev.status}` };
  if (prev.status === 'running' && typeof prev.pid === 'number' && prev.pid !== process.pid && processAlive(prev.pid)) return { ok: false, why: `its run is still going (pid ${prev.pid})` };
  const want = identityHash(opts.identity);
  if ((prev.runIdentity ?? null) !== want) return { ok: false, why: 'it was run with another model, data, seed or probe options' };
  return { ok: true };
}

/** The newest unfinished results/<command>-<model>-<data>-* folder this run can continue. */
function findResumable(root: string, stem: string, opts: ResultSetOptions): string | undefined {
  if (!existsSync(root)) return undefined;
  const candidates = readdirSync(root).filter((n) => n.startsWith(stem + '-')).sort().reverse();
  return candidates.map((n) => join(root, n)).find((d) => resumable(readManifestOrNull(d), opts).ok);
}

/**
 * Open the results folder: --out (refusing a non-empty folder without --force) or a new
 * results/<command>-<model>-<data>-<UTC timestamp>/ under the working directory.
 */
export async function createResultSet(opts: ResultSetOptions): Promise<ResultSet> {
  let dir: string;
  let resumedFrom: Manifest | undefined;
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
    }
    mkdirSync(dir, { recursive: true });
    const unlock = await lockRunFolder(dir, opts.out);
    try {
      const entries = folderEntries(dir);
      if (entries.length && opts.force) {
        clearPreviousRun(dir);
      } else if (entries.length) {
        const prev = readManifestOrNull(dir);
        const r = resumable(prev, opts);
        if (!r.ok) {
          throw new InputError(`results folder ${opts.out} already exists and is not empty`, {
            file: opts.out,
            expected: 'a new or empty folder, or the folder of an interrupted run of this same command (results are never overwritten silently)',
            found: `${r.why}: ${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}`,
            fix: 'choose another --out, remove the folder, or add --force to overwrite it',
          });
        }
        resumedFrom = prev!;
        opts.ui.info(`resuming the ${prev!.status} run in ${dir} (started ${prev!.startedAt}): finished units are reused`);
      } else if (opts.resume) {
        throw new InputError(`nothing to resume in ${opts.out}`, { file: opts.out, expected: 'the folder of an interrupted run', found: 'an empty folder', fix: 'drop --resume to start a new run there' });
      }
    } catch (err) {
      unlock();
      throw err;
    }
    return new ResultSet(dir, opts, resumedFrom, unlock);
  }
  const root = resolve('results');
  mkdirSync(root, { recursive: true });
  const stem = `${sanitizeId(opts.command)}-${sanitizeId(opts.modelId)}-${sanitizeId(opts.dataId)}`;
  if (opts.resume) {
    const found = findResumable(root, stem, opts);
    if (!found) {
      throw new InputError('nothing to resume', { file: root, expected: `an interrupted ${stem}-* folder of this same command, model, data and options`, found: 'none', fix: 'drop --resume to start a new run, or pass the folder with --out' });
    }
    return createResultSet({ ...opts, out: found, resume: true });
  }
  for (let i = 1; ; i++) {
    const candidate = join(root, i === 1 ? `${stem}-${utcStamp()}` : `${stem}-${utcStamp()}-${i}`);
    try {
      mkdirSync(candidate); // not recursive: fails if another run took the name this second
      dir = candidate;
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 1000) throw err;
    }
  }
  return new ResultSet(dir, opts, undefined, (await acquireLock(join(dir, RUN_LOCK))) as () => void);
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
  rmSync(join(dir, UNITS_DIR), { recursive: true, force: true });
}
