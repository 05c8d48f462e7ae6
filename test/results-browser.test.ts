import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { createResultSet } from '../src/results/resultset.js';
import { attentionMap, barChart, confusionMatrix, dependencyArcs, heatmap, lineOverLayers, scatter } from '../src/results/figures.js';
import { Ui } from '../src/util/ui.js';
import { fixturesDir, repoRoot, runCli, tempDir } from './helpers.js';

/**
 * The report a researcher opens: report.html of a real `structural` run (tiny-bert on the PTB
 * sample through the data mirror, with its random-init control), and a report holding one
 * figure of every kind, opened in headless Chromium. Every figure must render to a non-empty
 * box, the console must stay free of errors, nothing may be fetched from the network, and a
 * screenshot is kept in test-artifacts/.
 */
const CHROMIUM = process.env.BERT_PROBE_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const artifacts = join(repoRoot, 'test-artifacts');

function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    assert.fail(`Chromium not found at ${CHROMIUM}: the report test needs Debian's chromium (apt-get install -y chromium; .ci/run installs it), or set BERT_PROBE_CHROMIUM to a Chromium binary`);
  }
}

async function launch(): Promise<Browser> {
  requireChromium();
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
}

interface FigureBox {
  name: string;
  width: number;
  height: number;
  contentWidth: number;
  contentHeight: number;
  marks: number;
}

async function checkReport(browser: Browser, dir: string, screenshot: string): Promise<FigureBox[]> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { figures: { name: string }[] };
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors: string[] = [];
  const external: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('request', (r) => {
    if (!/^(file|data|about):/.test(r.url())) external.push(r.url());
  });
  await page.goto(pathToFileURL(join(dir, 'report.html')).href, { waitUntil: 'load' });
  const boxes = await page.$$eval('figure[data-figure]', (figs) =>
    figs.map((f) => {
      const svg = f.querySelector('svg');
      const r = svg?.getBoundingClientRect();
      const b = svg ? (svg as unknown as { getBBox(): { width: number; height: number } }).getBBox() : undefined;
      return {
        name: f.getAttribute('data-figure') ?? '',
        width: r?.width ?? 0,
        height: r?.height ?? 0,
        contentWidth: b?.width ?? 0,
        contentHeight: b?.height ?? 0,
        marks: svg ? svg.querySelectorAll('path, line, text, rect, circle').length : 0,
      };
    }),
  );
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, screenshot), fullPage: true });
  const text = await page.textContent('body');
  await page.close();
  assert.deepEqual(consoleErrors, [], 'console errors in report.html');
  assert.deepEqual(external, [], 'report.html must not fetch anything');
  assert.deepEqual(boxes.map((b) => b.name), manifest.figures.map((f) => f.name), 'every figure of the manifest is in the report');
  for (const b of boxes) {
    assert.ok(b.width > 50 && b.height > 50, `figure ${b.name} has an empty box (${b.width}×${b.height})`);
    assert.ok(b.contentWidth > 20 && b.contentHeight > 20, `figure ${b.name} draws nothing (${b.contentWidth}×${b.contentHeight})`);
    assert.ok(b.marks > 5, `figure ${b.name} has only ${b.marks} marks`);
  }
  assert.match(text ?? '', /Reproduce/);
  assert.match(text ?? '', /Manifest/);
  return boxes;
}

test('report.html of a real structural run and of every figure kind render in headless Chromium', { timeout: 240_000 }, async () => {
  requireChromium(); // fail first and clearly, never skip
  // 1. a real run: structural probe on tiny-bert with its random control, PTB sample via the mirror
  const real = join(tempDir(), 'structural');
  const r = runCli(['structural', '--data', 'ptb', '--model', join(fixturesDir, 'tiny-bert'), '--control', 'random', '--limit', '16', '--max-epochs', '2', '--out', real, '--quiet']);
  assert.equal(r.status, 0, `structural run failed: ${r.stderr}`);

  // 2. one figure of every kind, through the ResultSet API
  const gallery = join(tempDir(), 'gallery');
  const rs = await createResultSet({ command: 'gallery', modelId: 'tiny', dataId: 'sample', out: gallery, ui: new Ui({ quiet: true }) });
  const rows = [0, 1, 2, 3].flatMap((layer) => [
    { model: 'tiny', layer, acc: 0.5 + 0.1 * layer },
    { model: 'random', layer, acc: 0.4 },
  ]);
  rs.writeRows(rows, ['model', 'layer', 'acc']);
  rs.addFigure('line', lineOverLayers({ rows, y: 'acc', series: 'model', yDomain: [0, 1] }), 'accuracy by layer');
  rs.addFigure('heads', heatmap({ values: [[0.1, 0.4, 0.8], [0.3, 0.9, 0.2], [0.5, 0.5, 0.6]], valueTitle: 'score' }), 'layer × head');
  rs.addFigure('scatter', scatter({ points: [{ x: 0, y: 1, label: 'cat', group: 'noun' }, { x: 1, y: 0.2, label: 'ran', group: 'verb' }, { x: 0.4, y: 0.5, label: 'dog', group: 'noun' }] }), 'PCA');
  rs.addFigure('bars', barChart({ bars: [{ label: 'nsubj', value: 0.8, group: 'tiny' }, { label: 'nsubj', value: 0.4, group: 'random' }, { label: 'dobj', value: 0.7, group: 'tiny' }, { label: 'dobj', value: 0.3, group: 'random' }] }), 'per relation');
  rs.addFigure('confusion', confusionMatrix({ labels: ['PER', 'LOC', 'O'], counts: [[8, 1, 1], [2, 6, 2], [0, 1, 40]] }), 'NER confusion');
  rs.addFigure('attention', attentionMap({ tokens: ['[CLS]', 'the', 'cat', 'sat', '[SEP]'], weights: [[0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.05, 0.05], [0.1, 0.6, 0.1, 0.1, 0.1], [0.05, 0.05, 0.8, 0.05, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]] }), 'layer 1 head 1');
  rs.addFigure('arcs', dependencyArcs({ words: ['the', 'cat', 'sat', 'down'], gold: [[0, 1], [1, 2], [3, 2]], predicted: [[0, 1], [1, 2], [3, 1]] }), 'gold vs predicted');
  await rs.finish({ best: { layer: 3, acc: 0.8 } });

  const browser = await launch();
  try {
    const realBoxes = await checkReport(browser, real, 'report-structural.png');
    assert.ok(realBoxes.some((b) => b.name === 'uuas-by-layer'), 'the structural report has its UUAS chart');
    assert.ok(realBoxes.some((b) => b.name.startsWith('tree-')), 'the structural report has arc trees');
    const uuas = readFileSync(join(real, 'uuas-by-layer.svg'), 'utf8');
    assert.ok(uuas.split('aria-roledescription="line mark"').length - 1 >= 2, 'model and random control are both drawn');
    const galleryBoxes = await checkReport(browser, gallery, 'report-gallery.png');
    assert.equal(galleryBoxes.length, 7);
  } finally {
    await browser.close();
  }
  assert.ok(existsSync(join(artifacts, 'report-structural.png')) && existsSync(join(artifacts, 'report-gallery.png')));
});
