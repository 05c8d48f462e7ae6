import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attentionMap,
  barChart,
  confusionMatrix,
  dependencyArcs,
  heatmap,
  layerIndex,
  lineOverLayers,
  renderFigure,
  scatter,
} from '../src/results/figures.js';
import { inlineSvg } from '../src/results/report.js';

/** Vega labels every mark for screen readers; counting them checks what was drawn. */
const count = (svg: string, role: string) => svg.split(`aria-roledescription="${role}"`).length - 1;

function assertSvg(svg: string) {
  assert.match(svg, /^<svg [^>]*width="\d+(\.\d+)?" height="\d+(\.\d+)?"/);
  assert.match(svg.trimEnd(), /<\/svg>$/);
  assert.doesNotMatch(svg, /<script|<foreignObject|href="http/);
}

test('line over layers: one line per series, layer names read as numbers', async () => {
  const rows = [0, 1, 2, 3].flatMap((l) => [
    { layer: l, model: 'bert', uuas: 0.3 + 0.1 * l, dspr: 0.5 },
    { layer: `layer.${l}`, model: 'random', uuas: 0.2, dspr: null },
  ]);
  const one = await renderFigure(lineOverLayers({ rows, y: 'uuas', series: 'model', title: 'UUAS', yDomain: [0, 1] }));
  assertSvg(one);
  assert.equal(count(one, 'line mark'), 2);
  assert.equal(count(one, 'point'), 8);
  assert.match(one, /model: random/);
  // the bert line rises: y pixel coordinates fall from left to right
  const d = /aria-label="layer: 0; uuas: 0.3; model: bert[^"]*"[^>]*d="([^"]+)"/.exec(one)![1];
  const ys = [...d.matchAll(/[ML][\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
  assert.equal(ys.length, 4);
  assert.ok(ys.every((y, i) => i === 0 || y < ys[i - 1]), `not rising: ${ys}`);
  // two metrics: each metric becomes a series; null cells are skipped
  const two = await renderFigure(lineOverLayers({ rows, y: ['uuas', 'dspr'], series: 'model' }));
  assert.equal(count(two, 'line mark'), 3);
  assert.equal(layerIndex('embeddings'), 0);
  assert.equal(layerIndex('layer.12'), 12);
  assert.equal(layerIndex('attn.3.4'), 'attn.3.4');
});

test('heatmap: one cell per value (empty for null), labelled 1-based', async () => {
  const svg = await renderFigure(heatmap({ values: [[0.1, 0.5, 0.9], [0.2, 0.3, null]], title: 'heads', valueTitle: 'acc' }));
  assertSvg(svg);
  assert.equal(count(svg, 'rect mark'), 5);
  assert.equal(count(svg, 'text mark'), 5);
  assert.match(svg, /head: 2; layer: 2; acc: 0\.3/);
  assert.doesNotMatch(svg, /head: 3; layer: 2/);
});

test('scatter, bar chart and confusion matrix draw every point, bar and cell', async () => {
  const sc = await renderFigure(scatter({ points: [{ x: 1, y: 2, label: 'cat', group: 'noun' }, { x: 2, y: 1, label: 'ran', group: 'verb' }, { x: NaN, y: 1 }] }));
  assertSvg(sc);
  assert.equal(count(sc, 'point'), 2);
  assert.match(sc, />cat</);
  const bar = await renderFigure(barChart({ bars: [{ label: 'nsubj', value: 0.8, group: 'bert' }, { label: 'nsubj', value: 0.3, group: 'random' }, { label: 'dobj', value: 0.6, group: 'bert' }] }));
  assertSvg(bar);
  assert.equal(count(bar, 'bar'), 3);
  const cm = await renderFigure(confusionMatrix({ labels: ['PER', 'LOC', 'O'], counts: [[5, 1, 0], [2, 7, 1], [0, 0, 30]] }));
  assertSvg(cm);
  assert.equal(count(cm, 'rect mark'), 9);
  assert.match(cm, />30</);
  assert.throws(() => confusionMatrix({ labels: ['a', 'b'], counts: [[1, 2]] }), /2 × 2/);
});

test('attention map: tokens on both sides, one line per weight above the threshold', async () => {
  const tokens = ['[CLS]', 'the', 'cat', '[SEP]'];
  const weights = [
    [0.7, 0.1, 0.1, 0.1],
    [0.2, 0.2, 0.5, 0.1],
    [0.05, 0.9, 0.05, 0.0],
    [0.25, 0.25, 0.25, 0.005],
  ];
  const svg = await renderFigure(attentionMap({ tokens, weights, title: 'layer 1 head 1' }));
  assertSvg(svg);
  assert.equal(count(svg, 'rule mark'), 14);
  assert.equal(count(svg, 'text mark'), 8);
  assert.equal(svg.split('>[CLS]<').length - 1, 2);
  // the strongest link is drawn more opaque than a weak one
  const opacity = (from: string, to: string) => Number(new RegExp(`aria-label="[^"]*from: ${from.replace(/[[\]]/g, '\\$&')}; to: ${to};[^"]*"[^>]* opacity="([\\d.]+)"`).exec(svg)?.[1]);
  assert.ok(opacity('cat', 'the') > opacity('the', 'the'), 'weights must set line opacity');
  assert.throws(() => attentionMap({ tokens, weights: [[1]] }), /4 × 4/);
});

test('dependency arcs: gold above, predicted below, mismatches dashed, words escaped', async () => {
  const fig = dependencyArcs({
    words: ['The', 'cat', 'sat', 'on', 'the', 'mat', '<.>'],
    gold: [[0, 1], [1, 2], [3, 5], [4, 5], [5, 2], [6, 2], [2, -1]],
    predicted: [[1, 0], [1, 2], [3, 2], [4, 5], [5, 3], [6, 5]],
    title: 'sentence & tree',
  });
  assert.equal(fig.kind, 'svg');
  const svg = await renderFigure(fig);
  assertSvg(svg);
  const gold = /<g class="gold"[^>]*>([\s\S]*?)<\/g>/.exec(svg)![1];
  const pred = /<g class="predicted"[^>]*>([\s\S]*?)<\/g>/.exec(svg)![1];
  assert.equal(gold.split('<path').length - 1, 6, 'root edge (head -1) is not an arc');
  assert.equal(pred.split('<path').length - 1, 6);
  assert.equal(pred.split('stroke-dasharray').length - 1, 2, 'two predicted edges are not in gold (undirected match)');
  assert.match(svg, />&lt;\.&gt;</);
  assert.match(svg, /sentence &amp; tree/);
  assert.match(svg, /4\/6 gold edges found/);
  // gold arcs bend upward (control points above the baseline), predicted ones downward
  const firstY = (g: string) => [...g.matchAll(/d="M[\d.]+,([\d.]+) C[\d.]+,([\d.]+)/g)].map((m) => Number(m[2]) - Number(m[1]));
  assert.ok(firstY(gold).every((dy) => dy < 0));
  assert.ok(firstY(pred).every((dy) => dy > 0));
});

test('figures never fetch anything and inline without id clashes', async () => {
  await assert.rejects(
    renderFigure({ kind: 'vega-lite', spec: { data: { url: 'https://example.com/x.csv' }, mark: 'point', encoding: { x: { field: 'a', type: 'quantitative' } } } }),
    /inline|refusing|no network/,
  );
  const a = inlineSvg('<?xml version="1.0"?><svg><defs><clipPath id="clip1"/></defs><g clip-path="url(#clip1)" onclick="x()"/><script>x</script></svg>', 'f0');
  assert.equal(a, '<svg><defs><clipPath id="f0-clip1"/></defs><g clip-path="url(#f0-clip1)"/></svg>');
});
