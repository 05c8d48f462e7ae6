import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { parseCell, readCsv, type Cell } from './csv.js';
import { barChart, lineOverLayers } from './figures.js';
import { flattenScalars } from './format.js';
import { readManifest, type Manifest } from './manifest.js';
import { createResultSet, type ResultSet } from './resultset.js';
import { loadReportInput, resultsFolder } from './report.js';

/**
 * `bert-probe compare DIR DIR...`: put runs side by side (a model against its random-init
 * control, two checkpoints, two corpora). The rows of each run's results.csv are matched on
 * the key columns they share (e.g. layer and probe); every shared numeric column becomes one
 * column per run (`uuas.bert_base_uncased`, `uuas.random`) and, for two runs, their difference
 * (`uuas.diff` = first − second: with a random control second, Hewitt & Liang's (2019) idea of
 * selectivity: what the model adds over a control). One line chart per metric with a series
 * per run, and the runs' summaries side by side.
 */
export interface CompareOptions {
  dirs: string[];
  out?: string;
  force?: boolean;
  /** Key columns to match rows on; default: guessed (see `guessKeys`). */
  keys?: string[];
  /** Names for the runs (default: model id, with "random" for random-init controls). */
  labels?: string[];
  argv?: string[];
  ui: Ui;
  json?: boolean;
}

interface Run {
  dir: string;
  label: string;
  tag: string;
  manifest: Manifest;
  summary: Record<string, unknown>;
  columns: string[];
  rows: Record<string, string>[];
}

/** Columns that identify a row even though they hold numbers. */
const NUMERIC_KEYS = new Set(['layer', 'head', 'rank', 'k', 'epoch', 'seed', 'length', 'sentence_length', 'fold', 'step']);
/** Columns naming what was run (one value per run, besides baseline rows): never match on them by default. */
const IDENTITY_COLUMNS = new Set(['model', 'checkpoint', 'data', 'dataset', 'corpus']);
/** Bookkeeping columns: merged into results.csv but not charted. */
const BOOKKEEPING = new Set(['seconds', 'epochs', 'sentences', 'words', 'tokens', 'count', 'n', 'best_dev_loss', 'dev_loss', 'train_loss']);

/** Whether every value of `metric` is a number in [0, 1] (a score, drawn on a 0–1 axis). */
function unitInterval(rows: readonly Record<string, unknown>[], metric: string): boolean {
  const vs = rows.map((r) => r[metric]).filter((v) => v !== '' && v !== null && v !== undefined).map(Number);
  return vs.length > 0 && vs.every((v) => Number.isFinite(v) && v >= 0 && v <= 1);
}

function loadRun(dir: string): Omit<Run, 'label' | 'tag'> {
  const abs = resultsFolder(dir);
  const input = loadReportInput(abs); // validates manifest.json and summary.json
  const csvPath = join(abs, 'results.csv');
  if (!existsSync(csvPath)) {
    throw new InputError(`${dir} has no results.csv to compare`, {
      file: csvPath,
      expected: 'results.csv (written by every probe command)',
      found: 'no such file',
      fix: 'compare folders of finished runs; rerun the command if it was interrupted',
    });
  }
  const csv = readCsv(csvPath);
  return { dir: abs, manifest: readManifest(join(abs, 'manifest.json')), summary: input.summary, columns: csv.columns, rows: csv.rows };
}

function defaultLabel(m: Manifest): string {
  const model = m.model ?? {};
  const id = String(model.id ?? 'run');
  const short = /^(\/|\.{1,2}\/)/.test(id) ? basename(id.replace(/\/+$/, '')) : id;
  return model.randomInit === true && !/random/i.test(short) ? `${short} (random init)` : short;
}

/** A label as a column-name suffix: lower case, [a-z0-9_]. */
export function columnTag(label: string): string {
  const t = label.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  return /^[a-z]/.test(t) ? t : `run_${t || 'x'}`;
}

function isNumeric(s: string): boolean {
  return s === '' || typeof parseCell(s) === 'number';
}

/**
 * Key columns, when the user names none: the columns all runs share that identify a row —
 * text columns and known index columns (layer, head, ...) — minus identity columns (model,
 * data, and any column constant within each run but different between runs), which would
 * match nothing.
 */
export function guessKeys(runs: Pick<Run, 'columns' | 'rows'>[]): { keys: string[]; metrics: string[] } {
  const shared = runs[0].columns.filter((c) => runs.every((r) => r.columns.includes(c)));
  const keys: string[] = [];
  const metrics: string[] = [];
  for (const c of shared) {
    const numeric = runs.every((r) => r.rows.every((row) => isNumeric(row[c])));
    if (numeric && !NUMERIC_KEYS.has(c)) {
      metrics.push(c);
      continue;
    }
    if (IDENTITY_COLUMNS.has(c)) continue;
    const perRun = runs.map((r) => new Set(r.rows.map((row) => row[c])));
    const constantWithin = perRun.every((s) => s.size === 1);
    const differsAcross = new Set(perRun.map((s) => [...s][0])).size > 1;
    if (constantWithin && differsAcross) continue; // identity column (model, data, ...)
    keys.push(c);
  }
  return { keys, metrics };
}

function uniqueLabels(labels: string[]): string[] {
  const out: string[] = [];
  for (const l of labels) {
    let v = l;
    for (let i = 2; out.includes(v); i++) v = `${l} #${i}`;
    out.push(v);
  }
  return out;
}

export async function compareRuns(o: CompareOptions): Promise<ResultSet> {
  if (o.dirs.length < 2) {
    throw new InputError('compare needs at least two results folders', {
      expected: 'bert-probe compare DIR DIR [DIR...]',
      found: `${o.dirs.length} folder${o.dirs.length === 1 ? '' : 's'}`,
      fix: 'pass two or more folders, e.g. a run and its --model random control',
    });
  }
  if (o.labels && o.labels.length !== o.dirs.length) {
    throw new InputError('one --label per folder', {
      expected: `${o.dirs.length} labels`,
      found: `${o.labels.length}: ${o.labels.join(', ')}`,
      fix: 'give --label once for each folder, in the same order',
    });
  }
  const loaded = o.dirs.map(loadRun);
  const labels = uniqueLabels(o.labels ?? loaded.map((r) => defaultLabel(r.manifest)));
  const tags = uniqueLabels(labels.map(columnTag)).map((t) => t.replace(/ #(\d+)$/, '_$1'));
  const runs: Run[] = loaded.map((r, i) => ({ ...r, label: labels[i], tag: tags[i] }));
  const commands = new Set(runs.map((r) => r.manifest.command));
  if (commands.size > 1) o.ui.warn(`comparing runs of different commands (${[...commands].join(', ')}); only shared columns are matched`);

  let keys: string[];
  let metrics: string[];
  const guessed = guessKeys(runs);
  if (o.keys && o.keys.length) {
    for (const k of o.keys) {
      const missing = runs.find((r) => !r.columns.includes(k));
      if (missing) {
        throw new InputError(`--key ${k} is not a column of every run`, {
          file: join(missing.dir, 'results.csv'),
          line: 1,
          expected: `one of the shared columns: ${runs[0].columns.filter((c) => runs.every((r) => r.columns.includes(c))).join(', ')}`,
          found: missing.columns.join(', '),
          fix: 'choose --key from the shared columns',
        });
      }
    }
    keys = o.keys;
    metrics = [...guessed.keys, ...guessed.metrics].filter((c) => !keys.includes(c) && runs.every((r) => r.rows.every((row) => isNumeric(row[c]))));
  } else {
    keys = guessed.keys;
    metrics = guessed.metrics;
  }
  if (metrics.length === 0) {
    throw new InputError('the runs share no numeric column to compare', {
      file: join(runs[0].dir, 'results.csv'),
      line: 1,
      expected: 'results.csv files with at least one shared numeric column',
      found: runs.map((r) => `${r.label}: ${r.columns.join(', ')}`).join('; '),
      fix: 'compare runs of the same command',
    });
  }

  // merge rows on the key tuple, in first-seen order
  const merged = new Map<string, Record<string, Cell>>();
  const dup = new Set<string>();
  for (const run of runs) {
    const seen = new Set<string>();
    for (const row of run.rows) {
      const k = JSON.stringify(keys.map((c) => row[c]));
      if (seen.has(k)) dup.add(run.label);
      seen.add(k);
      let m = merged.get(k);
      if (!m) {
        m = Object.fromEntries(keys.map((c) => [c, parseCell(row[c])]));
        merged.set(k, m);
      }
      for (const metric of metrics) {
        const v = parseCell(row[metric]);
        m[`${metric}.${run.tag}`] = typeof v === 'number' ? v : null;
      }
    }
  }
  if (dup.size) {
    throw new InputError(`rows are not unique on the key columns (${keys.join(', ') || 'none'})`, {
      file: join(runs.find((r) => dup.has(r.label))!.dir, 'results.csv'),
      expected: 'one row per key value in each run',
      found: `repeated keys in ${[...dup].join(', ')}`,
      fix: `name the columns that identify a row with --key (e.g. --key ${[...keys, ...runs[0].columns.filter((c) => !keys.includes(c) && !metrics.includes(c))].slice(0, 3).join(',') || 'layer'})`,
    });
  }
  const columns = [...keys];
  for (const metric of metrics) {
    for (const run of runs) columns.push(`${metric}.${run.tag}`);
    if (runs.length === 2) columns.push(`${metric}.diff`);
  }
  const rows = [...merged.values()].map((m) => {
    const row: Record<string, Cell> = {};
    for (const c of columns) row[c] = m[c] ?? null;
    if (runs.length === 2) {
      for (const metric of metrics) {
        const a = m[`${metric}.${runs[0].tag}`];
        const b = m[`${metric}.${runs[1].tag}`];
        row[`${metric}.diff`] = typeof a === 'number' && typeof b === 'number' ? a - b : null;
      }
    }
    return row;
  });
  const descriptions: Record<string, string> = {};
  for (const metric of metrics) {
    for (const run of runs) descriptions[`${metric}.${run.tag}`] = `${metric} of ${run.label} (${run.dir})`;
    if (runs.length === 2) descriptions[`${metric}.diff`] = `${metric} of ${runs[0].label} minus ${metric} of ${runs[1].label}`;
  }

  const dataIds = [...new Set(runs.map((r) => String(r.manifest.data?.id ?? 'data')))];
  const rs = await createResultSet({
    command: 'compare',
    modelId: runs.map((r) => r.label).join('-vs-'),
    dataId: dataIds.join('+'),
    out: o.out,
    force: o.force,
    argv: o.argv,
    ui: o.ui,
    json: o.json,
  });
  rs.setManifest({
    reportTitle: `bert-probe compare: ${runs.map((r) => r.label).join(' vs ')}`,
    model: { id: runs.map((r) => r.label).join(' vs ') },
    data: { id: dataIds.join(' + ') },
    keys,
    metrics,
    runs: runs.map((r) => ({
      label: r.label,
      columnTag: r.tag,
      dir: r.dir,
      command: r.manifest.command,
      model: r.manifest.model,
      data: r.manifest.data,
      seed: r.manifest.seed,
      reproduce: r.manifest.reproduce,
      finishedAt: r.manifest.finishedAt,
    })),
  });
  rs.writeRows(rows, columns, descriptions);

  // figures: one line chart per metric over layers (series = run, plus any other key), else bars
  const long: Record<string, unknown>[] = [];
  for (const run of runs) for (const row of run.rows) long.push({ ...row, run: run.label });
  const otherKeys = keys.filter((k) => k !== 'layer');
  const seriesCount = new Set(long.map((r) => JSON.stringify([r.run, ...otherKeys.map((k) => r[k])]))).size;
  const charted = metrics.filter((m) => !BOOKKEEPING.has(m) && new Set(long.map((r) => r[m]).filter((v) => v !== '')).size > 1);
  for (const metric of charted.slice(0, 8)) {
    if (keys.includes('layer') && seriesCount <= 16) {
      rs.addFigure(
        `compare-${metric}`,
        // Scores in [0, 1] share the fixed 0–1 axis of the runs' own figures (an autoscaled axis made small differences look large).
        lineOverLayers({ rows: long, y: metric, series: ['run', ...otherKeys], title: `${metric} by layer`, yTitle: metric, ...(unitInterval(long, metric) ? { yDomain: [0, 1] as [number, number] } : {}) }),
        `${metric} by layer, one line per run${otherKeys.length ? ` and ${otherKeys.join(', ')}` : ''}.`,
      );
    } else if (merged.size * runs.length <= 120) {
      rs.addFigure(
        `compare-${metric}`,
        barChart({
          bars: long.map((r) => ({ label: keys.map((k) => String(r[k])).join(' · ') || metric, value: Number(parseCell(String(r[metric]))), group: String(r.run) })),
          title: metric,
          yTitle: metric,
        }),
        `${metric} per ${keys.join(', ') || 'run'}, one bar per run.`,
      );
    }
  }

  // the runs' summaries side by side
  const flat = runs.map((r) => flattenScalars(r.summary));
  const summaryKeys: string[] = [];
  for (const f of flat) for (const k of Object.keys(f)) if (!summaryKeys.includes(k)) summaryKeys.push(k);
  const table = {
    title: 'Summaries side by side',
    columns: ['key', ...runs.map((r) => r.label)],
    rows: summaryKeys.map((k) => ({ key: k, ...Object.fromEntries(runs.map((r, i) => [r.label, flat[i][k] ?? null])) })),
  };
  const summary = {
    runs: runs.map((r) => ({ label: r.label, dir: r.dir, command: r.manifest.command, model: r.manifest.model?.id ?? null, data: r.manifest.data?.id ?? null, summary: r.summary })),
    keys,
    metrics,
    rows: rows.length,
    ...(runs.length === 2
      ? {
          // Differences of scores only: averaging seconds or epochs says nothing about the runs (issue 15 item 10).
          meanDiff: Object.fromEntries(
            metrics.filter((metric) => !BOOKKEEPING.has(metric)).map((metric) => {
              const ds = rows.map((r) => r[`${metric}.diff`]).filter((v): v is number => typeof v === 'number');
              return [metric, ds.length ? ds.reduce((a, b) => a + b, 0) / ds.length : null];
            }),
          ),
        }
      : {}),
  };
  await rs.finish(summary, table);
  return rs;
}
