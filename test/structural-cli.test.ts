/**
 * `bert-probe structural` end to end through the data mirror (issue 6, "Must show"): the full
 * results folder for tiny-bert on PTB (with the random-init control) and for the bert-base-shaped
 * random model on EWT, and every metric in results.csv recomputed exactly from predictions.jsonl.
 * Needs `npm run build` (runCli runs bin/bert-probe over dist/).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { scoreRecords, type PredictionRecord } from '../src/probes/structural-eval.js';
import { spawnSync } from 'node:child_process';
import { fixturesDir, hasNumpy, repoRoot, runCli, skipUnless, tempDir } from './helpers.js';

const numpy = skipUnless('python3 with numpy', hasNumpy());

const COLUMNS = ['model', 'layer', 'probe', 'uuas', 'dspr', 'root_acc', 'nspr', 'sentences', 'epochs', 'best_dev_loss', 'seconds'];

/**
 * Every metric cell equals what the independent Python reference (test/fixtures/structural/
 * reference.py, reporter.py's formulas) computes from predictions.jsonl: gold trees from the heads
 * and POS written there, not from our goldSentence/mstEdges/uuas.
 */
function assertReferenceAgrees(dir: string, rows: Record<string, string>[]): void {
  const r = spawnSync('python3', [join(repoRoot, 'test', 'fixtures', 'structural', 'reference.py'), 'score', join(dir, 'predictions.jsonl')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr);
  const ref = JSON.parse(r.stdout) as Record<string, string | number | null>[];
  let checked = 0;
  for (const row of rows) {
    const mine = ref.find((x) => x.model === row.model && x.layer === row.layer)!;
    assert.ok(mine, `reference scored ${row.model} ${row.layer}`);
    for (const col of row.probe === 'distance' ? ['uuas', 'dspr'] : ['root_acc', 'nspr']) {
      if (col === 'dspr' && mine[col] === undefined) continue; // DSpr needs --save-distances
      assert.ok(Math.abs(Number(row[col]) - Number(mine[col])) < 1e-9, `${row.model} ${row.layer} ${col}: results.csv ${row[col]}, reference ${mine[col]}`);
      checked++;
    }
  }
  assert.ok(checked >= rows.length + 1, `${checked} cells checked`);
}

/** summary.json and the report's summary against the rows they summarise: best = argmax. */
function assertSummaryMatchesRows(dir: string, summary: { best: Record<string, Record<string, { layer: string; value: number } | null>>; baselines: { linear: Record<string, number | null> } }, rows: Record<string, string>[]): void {
  const models = [...new Set(rows.map((r) => r.model).filter((m) => m !== 'baseline'))];
  assert.deepEqual(Object.keys(summary.best).sort(), models.sort());
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  for (const m of models) {
    for (const [metric, best] of Object.entries(summary.best[m]!)) {
      const cells = rows.filter((r) => r.model === m && r[metric] !== '' && r[metric] !== undefined).map((r) => ({ layer: r.layer!, value: Number(r[metric]) }));
      const top = Math.max(...cells.map((c) => c.value));
      assert.deepEqual(best, { layer: cells.find((c) => c.value === top)!.layer, value: top }, `${m} best ${metric}`);
      assert.ok(html.includes(`<th>best.${m}.${metric}.layer</th><td>${best!.layer}</td>`), `report.html shows the best ${metric} layer of ${m}`);
    }
  }
  const base = rows.filter((r) => r.model === 'baseline');
  for (const [metric, v] of Object.entries(summary.baselines.linear)) {
    assert.equal(v, Number(base.find((r) => r[metric] !== '')![metric]), `linear baseline ${metric}`);
  }
}

function readRun(dir: string) {
  for (const f of ['results.csv', 'summary.json', 'manifest.json', 'predictions.jsonl', 'report.html', 'uuas-by-layer.svg', 'nspr-by-layer.svg', 'tree-1.svg']) {
    assert.ok(existsSync(join(dir, f)), `${f} written`);
  }
  const csv = readFileSync(join(dir, 'results.csv'), 'utf8');
  assert.equal(csv.split('\n')[0], COLUMNS.join(','));
  const rows = parse(csv, { columns: true }) as Record<string, string>[];
  const records = readFileSync(join(dir, 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as PredictionRecord);
  return { rows, records, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')), manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) };
}

/** Every metric cell equals the value recomputed from that (model, layer)'s prediction records. */
function assertRecomputable(rows: Record<string, string>[], records: PredictionRecord[]): void {
  for (const row of rows) {
    const mine = records.filter((r) => r.model === row.model && r.layer === row.layer);
    assert.equal(mine.length, Number(row.sentences), `${row.model} ${row.layer}: one record per test sentence`);
    const s = scoreRecords(mine);
    const cells = row.probe === 'distance' ? { uuas: s.uuas, dspr: s.dspr } : { root_acc: s.rootAcc, nspr: s.nspr };
    for (const [col, v] of Object.entries(cells)) {
      assert.notEqual(v, null, `${col} recomputable for ${row.model} ${row.layer}`);
      assert.equal(Number(row[col]), v, `${row.model} ${row.layer} ${col}`);
    }
  }
}

test('structural on PTB with tiny-bert and --control random: full results folder, metrics recomputable', async (t) => {
  const out = join(tempDir(), 'run');
  const r = runCli(['structural', '--data', 'ptb', '--model', join(fixturesDir, 'tiny-bert'), '--control', 'random', '--limit', '30', '--max-epochs', '4', '--save-distances', '--out', out, '--seed', '3']);
  assert.equal(r.status, 0, r.stderr);
  const { rows, records, summary, manifest } = readRun(out);
  const models = [...new Set(rows.map((x) => x.model))];
  assert.equal(models.length, 3, `baseline, tiny-bert and its control: ${models}`);
  assert.ok(models.some((m) => m.startsWith('random-init')), 'control labelled random-init');
  for (const m of models.filter((x) => x !== 'baseline')) {
    assert.deepEqual(rows.filter((x) => x.model === m && x.probe === 'distance').map((x) => x.layer), ['layer.0', 'layer.1', 'layer.2', 'layer.3']);
    assert.deepEqual(rows.filter((x) => x.model === m && x.probe === 'depth').map((x) => x.layer), ['layer.0', 'layer.1', 'layer.2', 'layer.3']);
  }
  for (const row of rows) {
    assert.equal(row.sentences, '30');
    if (row.model !== 'baseline') assert.ok(Number(row.epochs) >= 1 && Number(row.epochs) <= 4);
  }
  assertRecomputable(rows, records);
  assertSummaryMatchesRows(out, summary, rows);
  await t.test('every metric equals the independent Python reference on predictions.jsonl', { skip: numpy }, () => assertReferenceAgrees(out, rows));
  // The linear baseline is the chain: its predicted tree links neighbours.
  const lin = records.find((x) => x.layer === 'linear')!;
  assert.ok(lin.predicted_edges!.every(([a, b]) => lin.words.slice(a + 1, b).every((_, k) => lin.punct[a + 1 + k])));
  assert.equal(manifest.seed, 3);
  assert.equal(manifest.control.randomInit, true);
  // Without tfjs-node, the probes train on onnxruntime (structural-onnx.ts); the manifest says so.
  assert.ok(['onnxruntime-cpu', 'tensorflow', 'tensorflow-cuda'].includes(manifest.probe.backend), `probe backend ${manifest.probe.backend}`);
});

test('structural on EWT with the bert-base-shaped random model (--limit for a quick run)', async (t) => {
  const out = join(tempDir(), 'run');
  const r = runCli(['structural', '--data', 'ewt', '--model', 'random', '--layers', '-1', '--limit', '12', '--max-epochs', '2', '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const { rows, records, summary } = readRun(out);
  assert.deepEqual(JSON.parse(r.stdout), { ...summary, out }, '--json prints summary.json and the results folder');
  assert.deepEqual(rows.filter((x) => x.model !== 'baseline').map((x) => `${x.layer} ${x.probe}`), ['layer.0 distance', 'layer.0 depth', 'layer.12 distance', 'layer.12 depth']);
  assert.ok(rows.every((x) => x.model === 'baseline' || x.model.startsWith('random-init')));
  // Without --save-distances DSpr cannot be recomputed, the others can.
  assert.equal(records[0]!.predicted_distances, undefined);
  const mine = records.filter((x) => x.layer === 'layer.12');
  const s = scoreRecords(mine);
  const row = (probe: string) => rows.find((x) => x.layer === 'layer.12' && x.probe === probe)!;
  assert.equal(Number(row('distance').uuas), s.uuas);
  assert.equal(Number(row('depth').root_acc), s.rootAcc);
  assert.equal(Number(row('depth').nspr), s.nspr);
  assertSummaryMatchesRows(out, summary, rows);
  await t.test('UUAS, root accuracy and NSpr equal the independent Python reference', { skip: numpy }, () => assertReferenceAgrees(out, rows));
  // UPOS PUNCT words are excluded from the trees.
  const withPunct = mine.find((x) => x.upos!.includes('PUNCT'))!;
  assert.ok(withPunct.predicted_edges!.every(([a, b]) => withPunct.upos![a] !== 'PUNCT' && withPunct.upos![b] !== 'PUNCT'));
});

test('structural: a layer the model lacks is bad usage (exit 2, names the fix)', () => {
  const r = runCli(['structural', '--data', 'ptb', '--model', join(fixturesDir, 'tiny-bert'), '--layers', '7', '--out', join(tempDir(), 'run')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--layers/);
  assert.match(r.stderr, /fix:/);
});

test('structural: a corpus without dependency trees is bad input (exit 2, says what to use)', () => {
  const dir = tempDir();
  const file = join(dir, 'plain.txt');
  writeFileSync(file, Array.from({ length: 20 }, (_, i) => `Sentence number ${i} has no tree .`).join('\n') + '\n');
  const r = runCli(['structural', '--data', file, '--model', join(fixturesDir, 'tiny-bert'), '--out', join(dir, 'run')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /no sentence with a dependency tree/);
  assert.match(r.stderr, /fix:.*treebank/);
});
