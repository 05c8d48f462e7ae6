import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';
import { readCsv } from './csv.js';
import { escapeXml } from './arcs.js';
import { flattenScalars, formatValue } from './format.js';
import type { FigureRecord, Manifest } from './manifest.js';

/**
 * report.html: one self-contained file a researcher can open anywhere (no network, no
 * scripts): the summary, the tables, every figure inline as SVG with its caption, the manifest
 * and the exact command to reproduce the run. It is always built from the results folder's
 * own files, so `bert-probe report DIR` rebuilds exactly what the run wrote.
 */
export interface ReportTable {
  title: string;
  columns: string[];
  rows: Record<string, unknown>[];
  /** Column name → what it means (shown as a legend and as header tooltips). */
  descriptions?: Record<string, string>;
  note?: string;
}

export interface ReportFigure {
  name: string;
  file: string;
  caption?: string;
  svg: string;
}

export interface ReportInput {
  title: string;
  subtitle?: string;
  summary: Record<string, unknown>;
  manifest: Record<string, unknown>;
  reproduce?: string;
  tables: ReportTable[];
  figures: ReportFigure[];
  /** Files in the folder, linked (relative) at the end. */
  files?: string[];
}

/** Rows of results.csv shown in the report; the full table is always in results.csv. */
export const MAX_TABLE_ROWS = 1000;

const esc = (s: string) => escapeXml(s);

/**
 * Make an SVG safe and independent to inline next to others: drop the XML prolog, scripts and
 * event handlers, and prefix every id (Vega names its clip paths clip1, clip2… in every
 * chart, which would collide between figures in one HTML page).
 */
export function inlineSvg(svg: string, prefix: string): string {
  let s = svg.replace(/<\?xml[^>]*\?>/g, '').replace(/<!DOCTYPE[^>]*>/gi, '');
  s = s.replace(/<script[\s\S]*?<\/script>/gi, '').replace(/\son[a-z]+\s*=\s*("[^"]*"|'[^']*')/gi, '');
  s = s.replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`);
  s = s.replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`);
  s = s.replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}-${id}"`);
  return s.trim();
}

const METRIC_NAMES: Record<string, string> = { uuas: 'UUAS', dspr: 'DSpr.', root_acc: 'root accuracy', nspr: 'NSpr.', accuracy: 'accuracy', f1: 'F1' };
const metricName = (m: string) => METRIC_NAMES[m] ?? m;
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '–');

interface Best {
  layer: string;
  value: number;
}

/**
 * The finding a researcher came for (issue 15 item 11), from a summary of the common shape
 * `best: {model: {metric: {layer, value}}}` with `baselines: {name: {metric: value}}`: one
 * sentence for the first metric and one small table (metric × best layer of the model, each
 * baseline, the random-init control). Empty when the summary has another shape.
 */
export function renderFinding(summary: Record<string, unknown>, manifest: Record<string, unknown>): string {
  const best = summary.best as Record<string, Record<string, Best | null>> | undefined;
  if (!best || typeof best !== 'object' || Array.isArray(best)) return '';
  const models = Object.keys(best);
  const main = typeof summary.model === 'string' && best[summary.model] ? summary.model : models.find((m) => !/^random-init/.test(m)) ?? models[0];
  if (!main || !best[main] || typeof best[main] !== 'object') return '';
  const control = models.find((m) => m !== main && /^random-init/.test(m));
  const baselines = (summary.baselines ?? {}) as Record<string, Record<string, number | null>>;
  const metrics = Object.keys(best[main]!).filter((k) => best[main]![k] && typeof best[main]![k]!.value === 'number');
  if (!metrics.length) return '';
  const data = String(summary.data ?? (manifest.data as { id?: unknown } | undefined)?.id ?? '');
  const m0 = metrics[0]!;
  const b0 = best[main]![m0]!;
  const against = Object.entries(baselines)
    .filter(([, v]) => v && typeof v[m0] === 'number')
    .map(([name, v]) => `${num(v[m0])} for the ${name === 'linear' ? 'linear baseline' : `${name} baseline`}`);
  const c0 = control ? best[control]?.[m0] : undefined;
  const sentence =
    `${esc(main)}${data ? ` on ${esc(data)}` : ''}: the best layer for ${esc(metricName(m0))} is <b>${esc(b0.layer)}</b> (${num(b0.value)})` +
    (against.length ? `, against ${esc(against.join(' and '))}` : '') +
    (c0 ? `; the random-init control reaches ${num(c0.value)} (${esc(c0.layer)})` : '') +
    '.';
  const baseNames = Object.keys(baselines).filter((n) => metrics.some((m) => typeof baselines[n]?.[m] === 'number'));
  const head = `<tr><th>metric</th><th>best layer</th><th>${esc(main)}</th>${baseNames.map((n) => `<th>${esc(n === 'linear' ? 'linear baseline' : n)}</th>`).join('')}${control ? `<th>${esc(control)}</th>` : ''}</tr>`;
  const body = metrics
    .map((m) => {
      const b = best[main]![m]!;
      const c = control ? best[control]?.[m] : undefined;
      return `<tr><td>${esc(metricName(m))}</td><td>${esc(b.layer)}</td><td class="num"><b>${num(b.value)}</b></td>${baseNames.map((n) => `<td class="num">${num(baselines[n]?.[m])}</td>`).join('')}${control ? `<td class="num">${c ? `${num(c.value)} (${esc(c.layer)})` : '–'}</td>` : ''}</tr>`;
    })
    .join('');
  return `<section id="finding"><h2>Finding</h2><p class="finding">${sentence}</p><table class="kv finding">${head}${body}</table><p class="muted">Best layer per metric on the test split; baselines and the random-init control as in results.csv.</p></section>`;
}

/** A banner when the model's weights are random: what researchers must not miss (issue 15 item 6). */
function renderRandomInit(manifest: Record<string, unknown>): string {
  const model = (manifest.model ?? {}) as { id?: unknown; randomInit?: unknown; randomInitReason?: unknown };
  if (model.randomInit !== true) return '';
  const why = typeof model.randomInitReason === 'string' ? ` Why: ${model.randomInitReason}.` : '';
  return `<section id="random-init" class="warning"><b>Random-init model.</b> ${esc(String(model.id ?? ''))} has randomly initialised weights: these results are a random-init control, not a trained model.${esc(why)}</section>`;
}

function renderKeyValues(obj: Record<string, unknown>): string {
  const flat = flattenScalars(obj);
  const keys = Object.keys(flat);
  if (keys.length === 0) return '<p class="muted">(empty)</p>';
  return `<table class="kv">${keys.map((k) => `<tr><th>${esc(k)}</th><td>${esc(formatValue(flat[k]))}</td></tr>`).join('')}</table>`;
}

/** The facts a reader checks first: what ran on what, with which seed, engine and versions. */
function renderRunFacts(m: Record<string, unknown>): string {
  const facts: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== '') facts[k] = v;
  };
  const model = (m.model ?? {}) as Record<string, unknown>;
  const data = (m.data ?? {}) as Record<string, unknown>;
  const versions = (m.versions ?? {}) as Record<string, unknown>;
  put('command', m.command);
  put('model', model.id);
  put('model path', model.path);
  put('model weights sha256', model.weightsSha256);
  put('random init', model.randomInit);
  put('random init because', model.randomInitReason);
  put('data', data.id);
  put('data sha256', data.sha256);
  if (data.splits && typeof data.splits === 'object') {
    put(
      'splits',
      Object.entries(data.splits as Record<string, unknown>)
        .map(([name, v]) => {
          if (v && typeof v === 'object') {
            const o = v as { id?: unknown; sentences?: unknown };
            return `${name}: ${o.id ?? ''}${typeof o.sentences === 'number' ? ` (${o.sentences} sentences)` : ''}`;
          }
          return `${name}: ${formatValue(v)}`;
        })
        .join('; '),
    );
  }
  put('seed', m.seed);
  put('engine', m.engine);
  put('backend', m.backend);
  put('status', m.status);
  put('started', m.startedAt);
  put('finished', m.finishedAt);
  put('seconds', m.seconds);
  put('bert-probe', versions.bertProbe);
  put('git commit', versions.gitCommit);
  put('node', versions.node);
  const rows = Object.entries(facts).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(formatValue(v))}</td></tr>`).join('');
  const stages = Array.isArray(m.stages) ? (m.stages as { name: string; seconds: number | null; status: string }[]) : [];
  const stageTable = stages.length
    ? `<table class="kv stages"><tr><th>stage</th><th>seconds</th><th>status</th></tr>${stages
        .map((s) => `<tr><td>${esc(s.name)}</td><td class="num">${esc(formatValue(s.seconds, 2))}</td><td>${esc(s.status)}</td></tr>`)
        .join('')}</table>`
    : '';
  return `<div class="run"><table class="kv">${rows}</table>${stageTable}</div>`;
}

function renderTable(t: ReportTable): string {
  const shown = t.rows.slice(0, MAX_TABLE_ROWS);
  const numeric = t.columns.map((c) => shown.length > 0 && shown.every((r) => r[c] === '' || r[c] === null || r[c] === undefined || !Number.isNaN(Number(r[c]))));
  const head = t.columns
    .map((c) => `<th${t.descriptions?.[c] ? ` title="${esc(t.descriptions[c])}"` : ''}>${esc(c)}</th>`)
    .join('');
  const body = shown
    .map((r) => `<tr>${t.columns.map((c, j) => `<td${numeric[j] ? ' class="num"' : ''}>${esc(formatValue(r[c]))}</td>`).join('')}</tr>`)
    .join('\n');
  const more = t.rows.length > shown.length ? `<p class="muted">First ${shown.length} of ${t.rows.length} rows; all of them are in results.csv.</p>` : '';
  const legend = t.descriptions && Object.keys(t.descriptions).length
    ? `<details><summary>Columns</summary><dl class="columns">${t.columns.filter((c) => t.descriptions![c]).map((c) => `<dt>${esc(c)}</dt><dd>${esc(t.descriptions![c])}</dd>`).join('')}</dl></details>`
    : '';
  return `<section class="table"><h2>${esc(t.title)}</h2>${t.note ? `<p class="muted">${esc(t.note)}</p>` : ''}<div class="scroll"><table class="data"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>${more}${legend}</section>`;
}

const CSS = `
body{font-family:Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666;font-size:13px}
.warning{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;border-radius:4px;margin:12px 0}
p.finding{font-size:15px}
.run{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
pre,code{font-family:Menlo,Consolas,monospace;font-size:12px}
pre{background:#f0f0f0;padding:10px;overflow:auto;border-radius:4px;white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse;font-size:13px;background:white}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{background:#f4f4f4;font-weight:normal;color:#444;white-space:nowrap}
table.data thead th{background:#f4f4f4;position:sticky;top:0}
.scroll{max-height:520px;overflow:auto;border:1px solid #eee;display:inline-block;max-width:100%}
.figures{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;background:white;border:1px solid #e4e4e4;border-radius:4px;padding:8px;max-width:100%;overflow-x:auto}
figure svg{display:block;max-width:none;height:auto}
figcaption{font-size:13px;color:#444;margin-top:6px;max-width:640px}
dl.columns dt{font-family:Menlo,Consolas,monospace;font-size:12px;margin-top:6px}dl.columns dd{margin-left:16px;font-size:13px}
`;

export function renderReportHtml(r: ReportInput): string {
  const figs = r.figures
    .map(
      (f, i) =>
        `<figure id="figure-${esc(f.name)}" data-figure="${esc(f.name)}">${inlineSvg(f.svg, `f${i}`)}<figcaption><b>Figure ${i + 1}.</b> ${esc(f.caption ?? f.name)} <span class="muted">(${esc(f.file)})</span></figcaption></figure>`,
    )
    .join('\n');
  const files = (r.files ?? []).map((f) => `<li><a href="${esc(encodeURI(f))}">${esc(f)}</a></li>`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header><h1>${esc(r.title)}</h1>${r.subtitle ? `<p class="muted">${esc(r.subtitle)}</p>` : ''}</header>
${renderRandomInit(r.manifest)}
${renderFinding(r.summary, r.manifest)}
${r.figures.length ? `<section id="figures"><h2>Figures</h2><div class="figures">\n${figs}\n</div></section>` : ''}
${r.tables.map(renderTable).join('\n')}
<section id="summary"><h2>Summary</h2><details${renderFinding(r.summary, r.manifest) ? '' : ' open'}><summary>summary.json</summary>${renderKeyValues(r.summary)}</details></section>
<section id="run"><h2>Run</h2>${renderRunFacts(r.manifest)}</section>
${r.reproduce ? `<section id="reproduce"><h2>Reproduce</h2><pre><code>${esc(r.reproduce)}</code></pre></section>` : ''}
<section id="manifest"><h2>Manifest</h2><details><summary>manifest.json (everything recorded about the run)</summary><pre><code>${esc(JSON.stringify(r.manifest, null, 2))}</code></pre></details></section>
${files ? `<section id="files"><h2>Files</h2><ul>${files}</ul></section>` : ''}
</main>
</body>
</html>
`;
}

function readJsonFile(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new InputError(`no ${what} in ${join(path, '..')}`, {
      file: path,
      expected: `a results folder written by bert-probe (with ${basename(path)})`,
      found: 'no such file',
      fix: 'pass the folder a bert-probe command wrote (results/<command>-<model>-<data>-<time>/)',
    });
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : undefined;
    throw new InputError(`${basename(path)} is not valid JSON`, {
      file: path,
      line,
      expected: 'JSON written by bert-probe',
      found: (err as Error).message,
      fix: 'restore the file or rerun the command that wrote the folder',
    });
  }
}

/** A results folder named by the user, resolved; exit 2 with the fix when it is not one. */
export function resultsFolder(dir: string): string {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw new InputError(`results folder ${dir} not found`, {
      file: dir,
      expected: 'a results folder written by bert-probe',
      found: existsSync(abs) ? 'a file' : 'nothing at that path',
      fix: 'pass a folder under results/ (ls results/)',
    });
  }
  return abs;
}

/** Collect a results folder's files into a ReportInput. */
export function loadReportInput(dir: string): ReportInput {
  const manifest = readJsonFile(join(dir, 'manifest.json'), 'manifest.json') as Partial<Manifest> & Record<string, unknown>;
  const summary = existsSync(join(dir, 'summary.json')) ? readJsonFile(join(dir, 'summary.json'), 'summary.json') : {};
  const tables: ReportTable[] = [];
  const st = manifest.summaryTable as { columns: string[]; rows: Record<string, unknown>[]; title?: string } | undefined;
  const csvPath = join(dir, 'results.csv');
  // The summary table is a column subset of results.csv: shown only when there is no results.csv (issue 15 item 11).
  if (st && Array.isArray(st.columns) && Array.isArray(st.rows) && !existsSync(csvPath)) tables.push({ title: st.title ?? 'Summary table', columns: st.columns, rows: st.rows });
  if (existsSync(csvPath)) {
    const csv = readCsv(csvPath);
    tables.push({
      title: 'Results (results.csv)',
      columns: csv.columns,
      rows: csv.rows,
      descriptions: (manifest.columnDescriptions as Record<string, string> | undefined) ?? undefined,
    });
  }
  const figures: ReportFigure[] = [];
  for (const f of (manifest.figures ?? []) as FigureRecord[]) {
    const p = join(dir, f.file);
    if (!existsSync(p)) continue;
    figures.push({ name: f.name, file: f.file, caption: f.caption, svg: readFileSync(p, 'utf8') });
  }
  const model = (manifest.model ?? {}) as Record<string, unknown>;
  const data = (manifest.data ?? {}) as Record<string, unknown>;
  const title = typeof manifest.reportTitle === 'string'
    ? manifest.reportTitle
    : `bert-probe ${manifest.command ?? ''}: ${String(model.id ?? '?')} on ${String(data.id ?? '?')}`;
  const when = manifest.finishedAt ?? manifest.startedAt;
  const subtitle = [
    when ? `run ${when}` : '',
    manifest.status && manifest.status !== 'finished' ? `status: ${manifest.status}` : '',
    typeof manifest.seconds === 'number' ? `${manifest.seconds.toFixed(1)} s` : '',
    manifest.versions ? `bert-probe ${(manifest.versions as { bertProbe?: string }).bertProbe ?? '?'}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const files = ((manifest.files ?? []) as string[]).filter((f) => f !== 'report.html');
  return { title, subtitle, summary, manifest, reproduce: typeof manifest.reproduce === 'string' ? manifest.reproduce : undefined, tables, figures, files };
}

/** (Re)write DIR/report.html from the folder's files; returns its path. */
export function writeReport(dir: string): string {
  const html = renderReportHtml(loadReportInput(dir));
  const path = join(dir, 'report.html');
  writeFileAtomic(path, html);
  return path;
}
