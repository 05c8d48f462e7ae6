/**
 * A child process for the results tests (not a test itself): writes a results folder through
 * the ResultSet API the way a probe command does, so tests can read its stdout (--json) or
 * SIGKILL it in the middle of writing.
 *
 *   results-child MODE OUT
 *     json   one small run, finished with --json semantics (summary.json on stdout)
 *     mid    write a complete run once, then start rewriting predictions.jsonl and announce
 *            "MID" on stderr half-way through, never finishing (the test kills it there)
 *     loop   rewrite every kind of file over and over until killed
 *     fail   write rows, then exit with code 1 without finishing (as the CLI does on an error)
 */
import { createResultSet } from '../src/results/resultset.js';
import { lineOverLayers, heatmap } from '../src/results/figures.js';
import { writeReport } from '../src/results/report.js';
import { Ui } from '../src/util/ui.js';

const [mode, out] = process.argv.slice(2);
const columns = ['i', 'total', 'layer', 'value', 'note'];

function rowsFor(n: number, round: number) {
  return Array.from({ length: n }, (_, i) => ({ i, total: n, layer: i % 13, value: Math.sin(i + round), note: `row "${i}", round ${round}` }));
}

function* predictions(n: number, round: number, announceAt?: number) {
  for (let i = 0; ; i++) {
    if (i === announceAt) process.stderr.write('MID\n');
    if (announceAt === undefined && i >= n) return;
    yield { i, total: n, round, words: Array.from({ length: 30 }, (_, k) => `w${k}`), scores: new Float32Array(64).fill(i) };
  }
}

const ui = new Ui({ json: mode === 'json', quiet: mode !== 'json' });
const rs = await createResultSet({ command: 'probe-test', modelId: 'tiny', dataId: 'sample', out, force: true, ui, json: mode === 'json', seed: 7 });

if (mode === 'json') {
  const rows = rowsFor(5, 0);
  rs.writeRows(rows, columns);
  rs.addFigure('value-by-layer', lineOverLayers({ rows, y: 'value' }), 'value by layer');
  await rs.finish({ best: { layer: 3, value: 0.5 }, rows: rows.length, note: 'ü "quoted"' });
} else if (mode === 'mid') {
  const rows = rowsFor(200, 0);
  rs.writeRows(rows, columns);
  rs.writePredictions(predictions(2000, 0));
  rs.addFigure('value-by-layer', lineOverLayers({ rows, y: 'value' }));
  await rs.finish({ rows: rows.length });
  rs.writePredictions(predictions(1e9, 1, 20000)); // never returns: killed after MID
} else if (mode === 'loop') {
  for (let round = 0; ; round++) {
    const n = 500 + ((round * 37) % 400);
    const rows = rowsFor(n, round);
    rs.writeRows(rows, columns);
    rs.writePredictions(predictions(3000 + round, round));
    rs.setManifest({ round });
    rs.addFigure(`fig-${round % 3}`, round % 2 ? heatmap({ values: [[round, 1], [2, 3]] }) : lineOverLayers({ rows, y: 'value' }));
    await new Promise((r) => setTimeout(r, 5));
    writeReport(rs.dir);
    if (round === 0) process.stderr.write('ROUND0\n');
  }
} else if (mode === 'fail') {
  await rs.stage('load', async () => 1);
  rs.writeRows(rowsFor(3, 0), columns);
  process.exitCode = 1;
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exitCode = 2;
}
