import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createResultSet, sanitizeId, utcStamp } from '../src/results/resultset.js';
import { lineOverLayers } from '../src/results/figures.js';
import { InputError } from '../src/util/errors.js';
import { Ui } from '../src/util/ui.js';
import { repoRoot, tempDir } from './helpers.js';
import { runChildSync } from './results-helpers.js';

const quiet = () => new Ui({ quiet: true });

test('ids become short, file-name-safe folder parts', () => {
  assert.equal(sanitizeId('bert-base-uncased'), 'bert-base-uncased');
  assert.equal(sanitizeId('google/bert_uncased_L-2_H-128_A-2'), 'google_bert_uncased_L-2_H-128_A-2');
  assert.equal(sanitizeId('/work/shared/fixtures/tiny-bert/'), 'tiny-bert');
  assert.equal(sanitizeId('./data/my corpus.conllu'), 'my-corpus.conllu');
  assert.equal(sanitizeId('random:bert-base'), 'random-bert-base');
  assert.equal(sanitizeId('ptb:test'), 'ptb-test');
  assert.equal(sanitizeId('../..'), 'unnamed');
  assert.ok(sanitizeId('x'.repeat(200)).length <= 48);
  assert.equal(utcStamp(new Date('2026-01-02T03:04:05.678Z')), '20260102T030405Z');
});

test('default folder is results/<command>-<model>-<data>-<UTC time>, never reused', async () => {
  const cwd = process.cwd();
  const work = tempDir();
  process.chdir(work);
  try {
    const a = await createResultSet({ command: 'structural', modelId: 'google/bert_uncased', dataId: 'ptb', ui: quiet() });
    const b = await createResultSet({ command: 'structural', modelId: 'google/bert_uncased', dataId: 'ptb', ui: quiet() });
    assert.match(basename(a.dir), /^structural-google_bert_uncased-ptb-\d{8}T\d{6}Z(-\d+)?$/);
    assert.notEqual(a.dir, b.dir);
    assert.equal(a.dir.startsWith(join(work, 'results')), true);
  } finally {
    process.chdir(cwd);
  }
});

test('a non-empty --out folder is refused without --force (exit 2 with the fix); --force clears the old run', async () => {
  const out = join(tempDir(), 'run');
  const first = await createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out, ui: quiet() });
  first.writeRows([{ a: 1 }], ['a']);
  first.writePredictions([{ p: 1 }]);
  await first.finish({ a: 1 });
  writeFileSync(join(out, 'notes.txt'), 'mine');
  await assert.rejects(
    createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out, ui: quiet() }),
    (e: unknown) => e instanceof InputError && e.exitCode === 2 && /--force/.test(e.message) && /already exists/.test(e.message),
  );
  const second = await createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out, force: true, ui: quiet() });
  assert.equal(existsSync(join(out, 'predictions.jsonl')), false, 'stale predictions of the old run must go');
  assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine', 'files the tool did not write are kept');
  await second.finish({ b: 2 });
  const file = join(tempDir(), 'file');
  writeFileSync(file, '');
  await assert.rejects(createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out: file, ui: quiet() }), /is a file/);
});

test('a run writes every file, and the manifest records what reproduces it', async () => {
  const out = join(tempDir(), 'run');
  const argv = ['/usr/bin/node', '/opt/bert-probe/bin/bert-probe', 'structural', '--data', 'my corpus.conllu', '--seed', '3'];
  const rs = await createResultSet({ command: 'structural', modelId: 'tiny', dataId: 'ptb', out, argv, seed: 3, ui: quiet() });
  // manifest.json exists from the start, so a killed run still says what it was
  assert.equal(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).status, 'running');
  rs.setManifest({ model: { path: '/m', weightsSha256: 'ab'.repeat(32), randomInit: false }, data: { sha256: 'cd'.repeat(32), splits: { train: 10, test: 3 } }, engine: 'onnx', backend: null });
  rs.setManifest({ model: { hiddenSize: 32 } });
  const rows = await rs.stage('probe', async () => {
    await new Promise((r) => setTimeout(r, 20));
    return [0, 1, 2, 3].map((layer) => ({ layer, uuas: layer / 10 }));
  });
  await assert.rejects(rs.stage('broken', async () => { throw new Error('boom'); }), /boom/);
  rs.writeRows(rows, ['layer', 'uuas'], { uuas: 'undirected unlabelled attachment score' });
  rs.writePredictions((function* () { yield { words: ['a', 'b'], d: new Float32Array([0.5, 2]) }; yield { words: [], d: [] }; })());
  rs.addFigure('uuas', lineOverLayers({ rows, y: 'uuas' }), 'UUAS by layer');
  rs.addFigure('bad', { kind: 'vega-lite', spec: { mark: 'nonsense' } });
  assert.throws(() => rs.addFigure('../escape', { kind: 'svg', svg: '<svg/>' }), /must match/);
  assert.throws(() => rs.addFigure('summary', { kind: 'svg', svg: '<svg/>' }), /must match/);
  await rs.finish({ best: { uuas: 0.3 } });
  await assert.rejects(rs.finish({}), /twice/);

  const files = readdirSync(out).sort();
  assert.deepEqual(files, ['manifest.json', 'predictions.jsonl', 'report.html', 'results.csv', 'summary.json', 'uuas.svg']);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.deepEqual(m.argv, argv);
  assert.equal(m.reproduce, `bert-probe structural --data 'my corpus.conllu' --seed 3`);
  assert.equal(m.seed, 3);
  assert.deepEqual(m.model, { id: 'tiny', path: '/m', weightsSha256: 'ab'.repeat(32), randomInit: false, hiddenSize: 32 });
  assert.deepEqual(m.data.splits, { train: 10, test: 3 });
  assert.equal(m.engine, 'onnx');
  assert.equal(m.status, 'failed', 'a failed stage marks the run failed');
  assert.deepEqual(m.stages.map((s: { name: string; status: string }) => [s.name, s.status]), [['probe', 'ok'], ['broken', 'failed']]);
  assert.ok(m.stages[0].seconds >= 0.015, `stage seconds ${m.stages[0].seconds}`);
  assert.ok(m.seconds >= m.stages[0].seconds);
  assert.ok(Date.parse(m.finishedAt) >= Date.parse(m.startedAt));
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  assert.equal(m.versions.bertProbe, pkg.version);
  assert.equal(m.versions.node, process.versions.node);
  assert.equal(m.versions.packages.vega, JSON.parse(readFileSync(join(repoRoot, 'node_modules/vega/package.json'), 'utf8')).version);
  assert.ok(m.versions.packages['onnxruntime-node']);
  assert.deepEqual(m.columns, ['layer', 'uuas']);
  assert.deepEqual(m.figures, [{ name: 'uuas', file: 'uuas.svg', caption: 'UUAS by layer' }]);
  assert.equal(typeof m.figureErrors.bad, 'string', 'a figure that fails to render is recorded');
  assert.deepEqual(m.predictions, { file: 'predictions.jsonl', count: 2 });
  assert.deepEqual(m.files, files);
  assert.equal(readFileSync(join(out, 'predictions.jsonl'), 'utf8'), '{"words":["a","b"],"d":[0.5,2]}\n{"words":[],"d":[]}\n');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /UUAS by layer/);
  assert.match(html, /bert-probe structural --data &#39;my corpus.conllu&#39; --seed 3/);
  assert.match(html, /undirected unlabelled attachment score/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'report must not load anything');
});

test('--json prints summary.json on stdout, with `out` (the results folder), and nothing else; stderr\'s last line names the folder', () => {
  const out = join(tempDir(), 'run');
  const r = runChildSync('json', out);
  assert.equal(r.status, 0, r.stderr);
  const printed = JSON.parse(r.stdout);
  // issue 15 item 7: a pipeline learns where the results went
  assert.deepEqual(printed, { ...JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')), out });
  assert.deepEqual(printed, { best: { layer: 3, value: 0.5 }, rows: 5, note: 'ü "quoted"', out });
  assert.equal(r.stderr.trimEnd().split('\n').at(-1), `results: ${out}`);
});

test('a run that exits with an error before finishing says so in its manifest', () => {
  const out = join(tempDir(), 'run');
  const r = runChildSync('fail', out);
  assert.equal(r.status, 1, r.stderr);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(m.status, 'failed');
  assert.equal(m.exitCode, 1);
  assert.ok(m.finishedAt);
  assert.deepEqual(m.stages.map((s: { name: string; status: string }) => [s.name, s.status]), [['load', 'ok']]);
  assert.equal(existsSync(join(out, 'summary.json')), false);
});

test('off a TTY the finish line is plain text on stderr, and --quiet prints nothing', async () => {
  const out = join(tempDir(), 'run');
  mkdirSync(out);
  const lines: string[] = [];
  const fake = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  const rs = await createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out, ui: new Ui({}, fake) });
  await rs.finish({ a: 1 });
  assert.deepEqual(lines, [`results: ${out}\n`]);
  const lines2: string[] = [];
  const fake2 = { isTTY: true, write: (s: string) => (lines2.push(s), true) } as unknown as NodeJS.WriteStream;
  const rs2 = await createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out: join(out, 'q'), ui: new Ui({ quiet: true }, fake2) });
  await rs2.finish({ a: 1 });
  assert.deepEqual(lines2, []);
});

test('on a TTY finish prints a compact table', async () => {
  const out = join(tempDir(), 'run');
  const lines: string[] = [];
  const fake = { isTTY: true, columns: 100, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  // Ui treats CI=… and TERM=dumb as no TTY by design; this test is about the TTY case
  const saved = { CI: process.env.CI, TERM: process.env.TERM };
  delete process.env.CI;
  process.env.TERM = 'xterm';
  let ui: Ui;
  try {
    ui = new Ui({}, fake);
  } finally {
    if (saved.CI !== undefined) process.env.CI = saved.CI;
    if (saved.TERM !== undefined) process.env.TERM = saved.TERM;
    else delete process.env.TERM;
  }
  assert.equal(ui.tty, true);
  const rs = await createResultSet({ command: 'x', modelId: 'm', dataId: 'd', out, ui });
  await rs.finish({ a: 1 }, { columns: ['layer', 'uuas'], rows: [{ layer: 1, uuas: 0.5 }, { layer: 12, uuas: 0.81234 }] });
  const text = lines.join('');
  assert.match(text, /layer  +uuas\n/);
  assert.match(text, /\n +12 +0\.8123\n/);
  assert.match(text, /report: +.*report\.html/);
});

test('report DIR rebuilds the same report.html from the files, and escapes what it shows', async () => {
  const out = join(tempDir(), 'run');
  const rs = await createResultSet({ command: 'x', modelId: '<b>m</b>', dataId: 'd', out, ui: quiet() });
  const rows = [{ layer: 1, word: '<script>alert(1)</script>', v: 0.5 }, { layer: 2, word: 'a & b', v: 0.25 }];
  rs.writeRows(rows, ['layer', 'word', 'v']);
  rs.addFigure('v', lineOverLayers({ rows, y: 'v' }), 'caption with <tags> & "quotes"');
  await rs.finish({ note: '</pre><script>x()</script>' });
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /<script/i);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(html, /caption with &lt;tags&gt; &amp; &quot;quotes&quot;/);
  assert.match(html, /&lt;b&gt;m&lt;\/b&gt;/);
  const { writeReport } = await import('../src/results/report.js');
  writeReport(out);
  assert.equal(readFileSync(join(out, 'report.html'), 'utf8'), html, 'rebuilding from the folder gives the same report');
});
