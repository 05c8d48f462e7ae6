import type { TopLevelSpec } from 'vega-lite';

/**
 * Figures a probe hands to its ResultSet. Charts are Vega-Lite specs with their data inline,
 * rendered to static SVG in Node by Vega (`View` with renderer 'none', `toSVG()`): no
 * browser, no canvas, no network. Only the dependency-arc trees are hand-written SVG (see
 * arcs.ts), because no chart grammar draws them.
 *
 * Every builder takes plain numbers and strings and returns a Figure; nothing is rendered
 * until `renderFigure` (the ResultSet calls it). Vega is imported only then: loading it takes
 * about a second, which every CLI start would otherwise pay.
 */
export type Figure = { kind: 'vega-lite'; spec: object } | { kind: 'svg'; svg: string };

const FONT = 'Helvetica, Arial, sans-serif';

function base(title: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(title ? { title } : {}),
    background: 'white',
    padding: 8,
    config: { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelLimit: 400 } },
    ...extra,
  };
}

function vl(spec: Record<string, unknown>): Figure {
  return { kind: 'vega-lite', spec };
}

/** `layer.3` → 3, `embeddings` → 0, numbers as they are; anything else is kept as text. */
export function layerIndex(v: unknown): number | string | null {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return v;
  const s = String(v);
  if (s === 'embeddings') return 0;
  const m = /^(?:layer\.)?(-?\d+(?:\.\d+)?)$/.exec(s);
  return m ? Number(m[1]) : s;
}

function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

export interface LineOverLayersOptions {
  /** Result rows, e.g. the rows given to `writeRows`; cells may be numbers or numeric strings. */
  rows: readonly Record<string, unknown>[];
  /** Metric column(s) to plot; with several, each becomes its own series. */
  y: string | readonly string[];
  /** Column holding the layer (numbers, or names like `layer.3`); default 'layer'. */
  x?: string;
  /** Column(s) whose values name a series (e.g. 'model', or ['model', 'probe']). */
  series?: string | readonly string[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Fix the y axis, e.g. [0, 1] for accuracies. */
  yDomain?: [number, number];
  width?: number;
  height?: number;
}

/**
 * A metric over layers, one line per series (models, probes, metrics): the figure of Tenney
 * et al. and Hewitt & Manning's per-layer plots.
 * Example: `lineOverLayers({rows, y: 'uuas', series: 'model'})`.
 */
export function lineOverLayers(o: LineOverLayersOptions): Figure {
  const x = o.x ?? 'layer';
  const ys = typeof o.y === 'string' ? [o.y] : [...o.y];
  const seriesCols = o.series === undefined ? [] : typeof o.series === 'string' ? [o.series] : [...o.series];
  const values: { x: number | string; y: number; series: string }[] = [];
  for (const row of o.rows) {
    const xv = layerIndex(row[x]);
    if (xv === null) continue;
    for (const metric of ys) {
      const yv = toNumber(row[metric]);
      if (yv === null) continue;
      const parts = seriesCols.map((c) => String(row[c] ?? ''));
      if (ys.length > 1 || parts.length === 0) parts.push(metric);
      values.push({ x: xv, y: yv, series: parts.join(' · ') });
    }
  }
  // rows whose x is not a layer number (e.g. a 'linear' baseline row) are left out when the
  // others are numbers: they belong in the caption or table, not on a layer axis
  if (values.some((v) => typeof v.x === 'number') && values.some((v) => typeof v.x !== 'number')) {
    for (let i = values.length - 1; i >= 0; i--) if (typeof values[i].x !== 'number') values.splice(i, 1);
  }
  const numericX = values.every((v) => typeof v.x === 'number');
  const xs = new Set(values.map((v) => v.x));
  return vl(
    base(o.title, {
      width: o.width ?? 460,
      height: o.height ?? 280,
      data: { values },
      mark: { type: 'line', point: true, strokeWidth: 2 },
      encoding: {
        x: {
          field: 'x',
          type: numericX ? 'quantitative' : 'ordinal',
          title: o.xTitle ?? x,
          ...(numericX ? { axis: { tickMinStep: 1, format: 'd', ...(xs.size <= 25 ? { values: [...xs].sort((a, b) => Number(a) - Number(b)) } : {}) }, scale: { nice: false } } : {}),
        },
        y: {
          field: 'y',
          type: 'quantitative',
          title: o.yTitle ?? ys.join(', '),
          ...(o.yDomain ? { scale: { domain: o.yDomain } } : { scale: { zero: false } }),
        },
        color: { field: 'series', type: 'nominal', title: seriesCols.length ? seriesCols.join(' · ') : 'metric' },
        tooltip: [
          { field: 'series', type: 'nominal' },
          { field: 'x', title: o.xTitle ?? x },
          { field: 'y', type: 'quantitative', format: '.4f', title: o.yTitle ?? ys.join(', ') },
        ],
      },
    }),
  );
}

export interface LineWithBandOptions {
  /** Points of each line: x, y and the series it belongs to. */
  lines: readonly { series: string; x: number; y: number }[];
  /** Shaded ranges [lo, hi] over x, one per series (e.g. the min-max of several random runs). */
  bands?: readonly { series: string; x: number; lo: number; hi: number }[];
  /** A horizontal reference line (e.g. the unpruned model's score). */
  rule?: { y: number; label: string };
  title?: string;
  xTitle?: string;
  yTitle?: string;
  xFormat?: string;
  width?: number;
  height?: number;
}

/**
 * Lines over a numeric x with shaded ranges beside them: a pruning curve (metric against
 * fraction of heads pruned) with the random-order mean and its range (Michel et al. 2019 Fig. 3).
 */
export function lineWithBand(o: LineWithBandOptions): Figure {
  const lines = o.lines.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const bands = (o.bands ?? []).filter((b) => Number.isFinite(b.x) && Number.isFinite(b.lo) && Number.isFinite(b.hi));
  const x = { field: 'x', type: 'quantitative', title: o.xTitle ?? 'x', ...(o.xFormat ? { axis: { format: o.xFormat } } : {}), scale: { nice: false } };
  const color = { field: 'series', type: 'nominal', title: 'series' };
  const layer: unknown[] = [];
  if (bands.length) layer.push({ data: { values: bands }, mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color } });
  layer.push({
    data: { values: lines },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x,
      y: { field: 'y', type: 'quantitative', title: o.yTitle ?? 'y', scale: { zero: false } },
      color,
      tooltip: [{ field: 'series', type: 'nominal' }, { field: 'x', type: 'quantitative', format: '.3f' }, { field: 'y', type: 'quantitative', format: '.4f' }],
    },
  });
  if (o.rule && Number.isFinite(o.rule.y)) {
    layer.push({ data: { values: [{ y: o.rule.y, label: o.rule.label }] }, mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'y', type: 'quantitative' } } });
  }
  return vl(base(o.title, { width: o.width ?? 460, height: o.height ?? 280, layer }));
}

export interface HeatmapOptions {
  /** values[row][col], e.g. [layer][head]; null leaves a cell empty. */
  values: readonly (readonly (number | null)[])[];
  rowTitle?: string;
  colTitle?: string;
  /** Default 1..rows and 1..cols (layers and heads are 1-based in user-facing output). */
  rowLabels?: readonly (string | number)[];
  colLabels?: readonly (string | number)[];
  title?: string;
  valueTitle?: string;
  /** Colour domain; default the data's range. */
  domain?: [number, number];
  /** A Vega colour scheme name; default 'viridis'. */
  scheme?: string;
  /** Print each value in its cell (default when the grid is at most 16 × 16). */
  showValues?: boolean;
  cellSize?: number;
}

/** An L × H grid (layer × head), e.g. attention-head scores as in Clark et al. (2019). */
export function heatmap(o: HeatmapOptions): Figure {
  const nRows = o.values.length;
  const nCols = Math.max(0, ...o.values.map((r) => r.length));
  const rowLabels = (o.rowLabels ?? Array.from({ length: nRows }, (_, i) => i + 1)).map(String);
  const colLabels = (o.colLabels ?? Array.from({ length: nCols }, (_, i) => i + 1)).map(String);
  const values: { row: string; col: string; value: number | null }[] = [];
  o.values.forEach((r, i) =>
    r.forEach((v, j) => values.push({ row: rowLabels[i], col: colLabels[j], value: v === null || !Number.isFinite(v) ? null : v })),
  );
  const cell = o.cellSize ?? Math.max(14, Math.min(36, Math.floor(420 / Math.max(nRows, nCols, 1))));
  const showValues = o.showValues ?? (nRows <= 16 && nCols <= 16);
  const rowTitle = o.rowTitle ?? 'layer';
  const colTitle = o.colTitle ?? 'head';
  const valueTitle = o.valueTitle ?? 'value';
  const layers: unknown[] = [
    {
      mark: { type: 'rect' },
      encoding: {
        color: {
          field: 'value',
          type: 'quantitative',
          title: valueTitle,
          scale: { scheme: o.scheme ?? 'viridis', ...(o.domain ? { domain: o.domain } : {}) },
        },
        tooltip: [
          { field: 'row', title: rowTitle },
          { field: 'col', title: colTitle },
          { field: 'value', type: 'quantitative', format: '.4f', title: valueTitle },
        ],
      },
    },
  ];
  if (showValues) {
    const finite = values.map((v) => v.value).filter((v): v is number => v !== null);
    const lo = o.domain?.[0] ?? Math.min(...finite);
    const hi = o.domain?.[1] ?? Math.max(...finite);
    const mid = (lo + hi) / 2;
    layers.push({
      transform: [{ filter: 'isValid(datum.value)' }],
      mark: { type: 'text', fontSize: Math.max(7, Math.min(11, cell / 3)) },
      encoding: {
        text: { field: 'value', type: 'quantitative', format: '.2f' },
        color: { condition: { test: `datum.value < ${Number.isFinite(mid) ? mid : 0}`, value: 'white' }, value: 'black' },
      },
    });
  }
  return vl(
    base(o.title, {
      width: cell * Math.max(nCols, 1),
      height: cell * Math.max(nRows, 1),
      data: { values },
      encoding: {
        x: { field: 'col', type: 'ordinal', title: colTitle, sort: colLabels, axis: { labelAngle: 0 } },
        y: { field: 'row', type: 'ordinal', title: rowTitle, sort: rowLabels },
      },
      layer: layers,
    }),
  );
}

export interface ScatterPoint {
  x: number;
  y: number;
  label?: string;
  group?: string;
}

export interface ScatterOptions {
  points: readonly ScatterPoint[];
  xTitle?: string;
  yTitle?: string;
  title?: string;
  /** Print each point's label beside it (default when there are at most 40 points). */
  showLabels?: boolean;
  width?: number;
  height?: number;
}

/** Points in 2-D, e.g. a PCA of word vectors (Coenen et al. 2019) or metric against metric. */
export function scatter(o: ScatterOptions): Figure {
  const values = o.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => ({ ...p, group: p.group ?? '' }));
  const grouped = values.some((p) => p.group !== '');
  const showLabels = o.showLabels ?? (values.length <= 40 && values.some((p) => p.label));
  const point: Record<string, unknown> = {
    mark: { type: 'point', filled: true, size: 60, opacity: 0.8 },
    encoding: {
      ...(grouped ? { color: { field: 'group', type: 'nominal', title: 'group' } } : {}),
      tooltip: [{ field: 'label' }, { field: 'group' }, { field: 'x', type: 'quantitative' }, { field: 'y', type: 'quantitative' }],
    },
  };
  const layer: unknown[] = [point];
  if (showLabels) layer.push({ mark: { type: 'text', align: 'left', dx: 6, fontSize: 10 }, encoding: { text: { field: 'label' } } });
  return vl(
    base(o.title, {
      width: o.width ?? 420,
      height: o.height ?? 320,
      data: { values },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: o.xTitle ?? 'x', scale: { zero: false } },
        y: { field: 'y', type: 'quantitative', title: o.yTitle ?? 'y', scale: { zero: false } },
      },
      layer,
    }),
  );
}

export interface Bar {
  label: string;
  value: number;
  /** Bars with the same label and different groups stand side by side. */
  group?: string;
}

export interface BarChartOptions {
  bars: readonly Bar[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Keep the given order (default) or sort by value, largest first. */
  sort?: 'given' | 'descending';
  yDomain?: [number, number];
  width?: number;
  height?: number;
}

/** Values per category, e.g. accuracy per relation or per task, optionally grouped by run. */
export function barChart(o: BarChartOptions): Figure {
  const values = o.bars.filter((b) => Number.isFinite(b.value)).map((b) => ({ ...b, group: b.group ?? '' }));
  const grouped = values.some((b) => b.group !== '');
  const order: string[] = [];
  for (const b of values) if (!order.includes(b.label)) order.push(b.label);
  const step = grouped ? Math.max(12, 10 * new Set(values.map((b) => b.group)).size) : 22;
  return vl(
    base(o.title, {
      width: o.width ?? { step: step + 8 },
      height: o.height ?? 260,
      data: { values },
      mark: { type: 'bar' },
      encoding: {
        x: {
          field: 'label',
          type: 'nominal',
          title: o.xTitle ?? '',
          sort: o.sort === 'descending' ? '-y' : order,
          axis: { labelAngle: order.some((l) => l.length > 3) ? -40 : 0, labelLimit: 160 },
        },
        y: { field: 'value', type: 'quantitative', title: o.yTitle ?? 'value', ...(o.yDomain ? { scale: { domain: o.yDomain } } : {}) },
        ...(grouped
          ? { xOffset: { field: 'group', type: 'nominal' }, color: { field: 'group', type: 'nominal', title: 'group' } }
          : { color: { value: '#4c78a8' } }),
        tooltip: [{ field: 'label' }, ...(grouped ? [{ field: 'group' }] : []), { field: 'value', type: 'quantitative', format: '.4f' }],
      },
    }),
  );
}

export interface ConfusionMatrixOptions {
  labels: readonly string[];
  /** counts[gold][predicted], in the order of `labels`. */
  counts: readonly (readonly number[])[];
  title?: string;
  /** Colour by the share of each gold row rather than raw counts (text still shows counts). */
  normalize?: boolean;
}

/** Gold classes down, predicted classes across; cell text is the count. */
export function confusionMatrix(o: ConfusionMatrixOptions): Figure {
  const n = o.labels.length;
  if (o.counts.length !== n || o.counts.some((r) => r.length !== n)) {
    throw new TypeError(`confusionMatrix: counts must be ${n} × ${n} to match the labels`);
  }
  const values: { gold: string; predicted: string; count: number; share: number }[] = [];
  o.counts.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((c, j) => values.push({ gold: o.labels[i], predicted: o.labels[j], count: c, share: total ? c / total : 0 }));
  });
  const cell = Math.max(18, Math.min(44, Math.floor(440 / Math.max(n, 1))));
  const colourField = o.normalize ? 'share' : 'count';
  const max = Math.max(0, ...values.map((v) => (o.normalize ? v.share : v.count)));
  return vl(
    base(o.title, {
      width: cell * n,
      height: cell * n,
      data: { values },
      encoding: {
        x: { field: 'predicted', type: 'nominal', sort: [...o.labels], title: 'predicted', axis: { labelAngle: -40, orient: 'top' } },
        y: { field: 'gold', type: 'nominal', sort: [...o.labels], title: 'gold' },
      },
      layer: [
        {
          mark: 'rect',
          encoding: {
            color: { field: colourField, type: 'quantitative', title: o.normalize ? 'share of gold row' : 'count', scale: { scheme: 'blues' } },
            tooltip: [{ field: 'gold' }, { field: 'predicted' }, { field: 'count' }, { field: 'share', format: '.3f' }],
          },
        },
        {
          mark: { type: 'text', fontSize: Math.max(7, Math.min(11, cell / 3)) },
          encoding: {
            text: { field: 'count', type: 'quantitative' },
            color: { condition: { test: `datum.${colourField} > ${max / 2}`, value: 'white' }, value: 'black' },
          },
        },
      ],
    }),
  );
}

export interface AttentionMapOptions {
  /** Attending tokens (left column). */
  tokens: readonly string[];
  /** weights[i][j]: attention from tokens[i] to targetTokens[j] (rows sum to 1 for softmax). */
  weights: readonly (readonly number[])[];
  /** Attended tokens (right column); default the same as `tokens`. */
  targetTokens?: readonly string[];
  title?: string;
  /** Lines below this weight are left out (default 0.01), as bertviz fades them away. */
  minWeight?: number;
  color?: string;
}

/**
 * A static version of bertviz's head view (Vig 2019): tokens listed on both sides, a line from
 * each attending token (left) to each attended token (right), opacity and width by weight.
 */
export function attentionMap(o: AttentionMapOptions): Figure {
  const targets = o.targetTokens ?? o.tokens;
  if (o.weights.length !== o.tokens.length || o.weights.some((r) => r.length !== targets.length)) {
    throw new TypeError(`attentionMap: weights must be ${o.tokens.length} × ${targets.length} (tokens × target tokens)`);
  }
  const min = o.minWeight ?? 0.01;
  const links: { y: number; y2: number; w: number; from: string; to: string }[] = [];
  o.weights.forEach((row, i) =>
    row.forEach((w, j) => {
      if (Number.isFinite(w) && w >= min) links.push({ y: i, y2: j, w, from: o.tokens[i], to: targets[j] });
    }),
  );
  const left = o.tokens.map((t, i) => ({ y: i, t }));
  const right = targets.map((t, i) => ({ y: i, t }));
  const n = Math.max(o.tokens.length, targets.length, 1);
  const rowH = 18;
  const y = { field: 'y', type: 'quantitative', scale: { domain: [-0.5, n - 0.5], reverse: true, nice: false, zero: false }, axis: null };
  const colour = o.color ?? '#1f77b4';
  return vl(
    base(o.title, {
      width: 260,
      height: rowH * n,
      layer: [
        {
          data: { values: links },
          mark: { type: 'rule', color: colour },
          encoding: {
            x: { datum: 0.2, type: 'quantitative', scale: { domain: [0, 1] }, axis: null },
            x2: { datum: 0.8 },
            y,
            y2: { field: 'y2' },
            opacity: { field: 'w', type: 'quantitative', scale: { domain: [0, 1], range: [0.05, 1] }, legend: null },
            strokeWidth: { field: 'w', type: 'quantitative', scale: { domain: [0, 1], range: [0.5, 3.5] }, legend: null },
            tooltip: [{ field: 'from' }, { field: 'to' }, { field: 'w', type: 'quantitative', format: '.3f', title: 'weight' }],
          },
        },
        {
          data: { values: left },
          mark: { type: 'text', align: 'right', dx: -4, fontSize: 12 },
          encoding: { x: { datum: 0.2, type: 'quantitative' }, y, text: { field: 't' } },
        },
        {
          data: { values: right },
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 12 },
          encoding: { x: { datum: 0.8, type: 'quantitative' }, y, text: { field: 't' } },
        },
      ],
    }),
  );
}

export { dependencyArcs } from './arcs.js';

/** Vega must never fetch anything: every chart carries its data inline. */
const noNetworkLoader = {
  load: async (uri: string) => {
    throw new Error(`figures carry their data inline; refusing to load ${uri}`);
  },
  sanitize: async (uri: string) => {
    throw new Error(`figures carry their data inline; refusing to load ${uri}`);
  },
  http: async () => {
    throw new Error('no network');
  },
  file: async () => {
    throw new Error('no file access');
  },
};

/** The first `url` anywhere in a compiled spec (data sources, image marks). */
function findUrl(v: unknown): string | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const u = findUrl(x);
      if (u !== undefined) return u;
    }
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'url' && x !== undefined) return typeof x === 'string' ? x : JSON.stringify(x);
      const u = findUrl(x);
      if (u !== undefined) return u;
    }
  }
  return undefined;
}

/** Render a figure to a standalone SVG document (string). */
export async function renderFigure(fig: Figure): Promise<string> {
  if (fig.kind === 'svg') return fig.svg;
  const messages: string[] = [];
  const logger = {
    level: () => logger,
    error: (...a: unknown[]) => (messages.push(a.map(String).join(' ')), logger),
    warn: () => logger,
    info: () => logger,
    debug: () => logger,
  };
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const vg = compile(fig.spec as TopLevelSpec, { logger: logger as never }).spec;
  const url = findUrl(vg);
  if (url !== undefined) throw new TypeError(`figures carry their data inline; refusing to load ${url}`);
  const view = new vega.View(vega.parse(vg), { renderer: 'none', loader: noNetworkLoader as never, logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
