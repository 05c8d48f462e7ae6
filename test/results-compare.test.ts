import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareRuns, guessKeys } from '../src/results/compare.js';
import { readCsv } from '../src/results/csv.js';
import { createResultSet } from '../src/results/resultset.js';
import { lineOverLayers } from '../src/results/figures.js';
import { Ui } from '../src/util/ui.js';
import { runCli, tempDir } from './helpers.js';

const quiet = () => new Ui({ quiet: true });
const COLUMNS = ['model', 'layer', 'probe', 'uuas', 'dspr'];

/** A finished structural-style run written through the ResultSet API. */
async function makeRun(dir: string, model: string, randomInit: boolean, score: (layer: number) => number, layers = [0, 1, 2, 3]) {
  const rs = await createResultSet({ command: 'structural', modelId: model, dataId: 'ptb', out: dir, ui: quiet(), seed: 1 });
  rs.setManifest({ model: { randomInit }, data: { sha256: '00'.repeat(32) } });
  // like the structural command: a baseline row beside the model's rows, so the model column
  // is not constant within a run
  const rows: Record<string, string | number | null>[] = [{ model: 'baseline', layer: 'linear', probe: 'distance', uuas: 0.5, dspr: 0.6 }];
  rows.push(...layers.flatMap((layer) => [
    { model, layer, probe: 'distance', uuas: score(layer), dspr: score(layer) + 0.1 },
    { model, layer, probe: 'depth', uuas: null, dspr: score(layer) / 2 },
  ]));
  rs.writeRows(rows, COLUMNS);
  rs.addFigure('uuas', lineOverLayers({ rows, y: 'uuas' }));
  await rs.finish({ best: { layer: layers[layers.length - 1], uuas: score(layers[layers.length - 1]) } });
  return dir;
}

test('keys: shared text and layer columns, minus identity columns like model', () => {
  const a = { columns: COLUMNS, rows: [{ model: 'a', layer: '0', probe: 'distance', uuas: '0.5', dspr: '' }, { model: 'a', layer: '1', probe: 'distance', uuas: '0.6', dspr: '' }] };
  const b = { columns: COLUMNS, rows: [{ model: 'b', layer: '0', probe: 'distance', uuas: '0.2', dspr: '' }] };
  assert.deepEqual(guessKeys([a, b]), { keys: ['layer', 'probe'], metrics: ['uuas', 'dspr'] });
});

test('compare merges a model and its random control on layer and probe', async () => {
  const root = tempDir();
  const a = await makeRun(join(root, 'a'), 'tiny-bert', false, (l) => 0.3 + 0.1 * l);
  const b = await makeRun(join(root, 'b'), 'tiny-control', true, () => 0.25, [0, 1, 2]);
  const out = join(root, 'cmp');
  const rs = await compareRuns({ dirs: [a, b], out, ui: quiet() });
  assert.equal(rs.dir, out);
  const csv = readCsv(join(out, 'results.csv'));
  assert.deepEqual(csv.columns, ['layer', 'probe', 'uuas.tiny_bert', 'uuas.tiny_control_random_init', 'uuas.diff', 'dspr.tiny_bert', 'dspr.tiny_control_random_init', 'dspr.diff']);
  assert.equal(csv.rows.length, 9);
  assert.deepEqual(csv.rows[0], { layer: 'linear', probe: 'distance', 'uuas.tiny_bert': '0.5', 'uuas.tiny_control_random_init': '0.5', 'uuas.diff': '0', 'dspr.tiny_bert': '0.6', 'dspr.tiny_control_random_init': '0.6', 'dspr.diff': '0' });
  const l2 = csv.rows.find((r) => r.layer === '2' && r.probe === 'distance')!;
  assert.equal(Number(l2['uuas.tiny_bert']), 0.5);
  assert.equal(Number(l2['uuas.tiny_control_random_init']), 0.25);
  assert.ok(Math.abs(Number(l2['uuas.diff']) - 0.25) < 1e-12);
  const l3 = csv.rows.find((r) => r.layer === '3' && r.probe === 'distance')!;
  assert.equal(l3['uuas.tiny_control_random_init'], '', 'a layer one run lacks stays empty');
  assert.equal(l3['uuas.diff'], '');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.deepEqual(summary.keys, ['layer', 'probe']);
  assert.deepEqual(summary.runs.map((r: { label: string }) => r.label), ['tiny-bert', 'tiny-control (random init)']);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.command, 'compare');
  assert.deepEqual(manifest.figures.map((f: { file: string }) => f.file), ['compare-uuas.svg', 'compare-dspr.svg']);
  const svg = readFileSync(join(out, 'compare-uuas.svg'), 'utf8');
  // one series per run and probe that has values: (tiny-bert, random) × distance; the
  // 'linear' baseline row has no layer number and stays off the layer axis
  assert.equal(svg.split('aria-roledescription="line mark"').length - 1, 2);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /Summaries side by side/);
  assert.match(html, /tiny-control \(random init\)/);
});

test('compare refuses bad input with exit-2 errors that say what to do', async () => {
  const root = tempDir();
  const a = await makeRun(join(root, 'a'), 'm1', false, () => 0.5);
  await assert.rejects(compareRuns({ dirs: [a], ui: quiet() }), (e: Error & { exitCode?: number }) => e.exitCode === 2 && /at least two/.test(e.message));
  await assert.rejects(compareRuns({ dirs: [a, join(root, 'nope')], ui: quiet() }), /not found[\s\S]*fix/);
  await assert.rejects(compareRuns({ dirs: [a, a], keys: ['nosuch'], ui: quiet() }), /--key nosuch is not a column/);
  await assert.rejects(compareRuns({ dirs: [a, a], keys: ['model'], ui: quiet() }), /not unique on the key columns[\s\S]*--key/);
  await assert.rejects(compareRuns({ dirs: [a, a], labels: ['x'], ui: quiet() }), /one --label per folder/);
  const broken = await makeRun(join(root, 'broken'), 'm2', false, () => 0.5);
  writeFileSync(join(broken, 'manifest.json'), '{"command": "structural",\n  oops\n}');
  await assert.rejects(compareRuns({ dirs: [a, broken], ui: quiet() }), (e: Error & { details?: { line?: number } }) => /not valid JSON/.test(e.message) && e.details?.line === 2);
});

test('CLI: compare --json prints its summary.json; report DIR rebuilds report.html', async () => {
  const root = tempDir();
  const a = await makeRun(join(root, 'a'), 'tiny-bert', false, (l) => 0.3 + 0.1 * l);
  const b = await makeRun(join(root, 'b'), 'random', true, () => 0.25);
  const out = join(root, 'cmp');
  const r = runCli(['compare', a, b, '--out', out, '--json', '--label', 'bert', '--label', 'control']);
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  assert.deepEqual(printed, { ...JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), out });
  assert.equal(printed.runs[1].label, 'control');
  // mean over matched rows: four layers (0.45 - 0.25 on average) and the shared baseline (0)
  assert.ok(Math.abs(printed.meanDiff.uuas - (4 * (0.45 - 0.25) + 0) / 5) < 1e-9, String(printed.meanDiff.uuas));
  assert.match(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).reproduce, /^bert-probe compare .* --json --label bert --label control$/);

  const again = runCli(['compare', a, b, '--out', out]);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /already exists[\s\S]*fix:.*--force/);

  rmSync(join(a, 'report.html'));
  const rep = runCli(['report', a]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.equal(rep.stdout, '');
  const html = readFileSync(join(a, 'report.html'), 'utf8');
  assert.match(html, /<figure id="figure-uuas"/);
  assert.match(html, /bert-probe structural: tiny-bert on ptb/);
  const missing = runCli(['report', join(root, 'none')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /not found/);
  assert.equal(existsSync(join(root, 'none')), false);
});
