/**
 * Issue 15 items 6, 10 and 11: random-init output is flagged where researchers look (manifest
 * with the reason, summary, report banner); report.html leads with the finding (best layer per
 * metric against the baselines and the control) before figures and tables, with no summary
 * table repeating results.csv; the work size is said before a run; `compare` does not average
 * seconds/epochs; `data info --help` lists only what it takes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixturesDir, runCli, tempDir } from './helpers.js';

const tiny = join(fixturesDir, 'tiny-bert');
const QUICK = ['--data', 'ptb', '--limit', '20', '--max-epochs', '2', '--layers', '0,2', '--seed', '4'];

test('a random-init run says so, and why, in the manifest, the summary and the report banner; the report leads with the finding', () => {
  const out = join(tempDir(), 'rnd');
  const r = runCli(['structural', ...QUICK, '--model', `random:${join(tiny, 'config.json')}`, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /work: \d+\/\d+\/\d+ train\/dev\/test sentences/);
  // The time estimate: 2 layers × distance and depth; this store is not cached yet.
  assert.match(r.stderr, /estimate: ≈ \d+ (s|min) on this machine \(extraction ≈ [^;]+; training ≈ [^:]+: 4 probe fits of 2 epoch\(s\), 2 at once; matrix speed measured \d+ GFLOP\/s per core\)/);
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.ok(m.estimate.seconds >= 0 && m.estimate.trainSeconds >= 0, 'the estimate is in the manifest');
  assert.equal(m.model.randomInit, true);
  assert.match(m.model.randomInitReason, /asked for: --model random:/);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(summary.random_init, true);
  assert.match(summary.random_init_reason, /asked for/);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /id="random-init"[^>]*><b>Random-init model\.<\/b>/);
  const at = (s: string) => html.indexOf(s);
  assert.ok(at('id="finding"') > 0, 'a Finding section');
  assert.ok(at('id="finding"') < at('id="figures"') && at('id="figures"') < at('Results (results.csv)'), 'finding, then figures, then tables');
  assert.ok(at('id="figures"') < at('id="summary"'), 'the flattened summary.json comes after the figures, folded');
  assert.match(html, /the best layer for UUAS is <b>layer\.\d<\/b>/);
  assert.doesNotMatch(html, /<h2>Summary table<\/h2>/, 'no summary table repeating results.csv');
});

test('a real model with --control random: the finding names the baselines and the control; compare averages scores only', () => {
  const a = join(tempDir(), 'a');
  const r = runCli(['structural', ...QUICK, '--model', tiny, '--control', 'random', '--out', a]);
  assert.equal(r.status, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(a, 'manifest.json'), 'utf8'));
  assert.equal(m.model.randomInit, false);
  assert.match(m.control.randomInitReason, /--control random/);
  const html = readFileSync(join(a, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /id="random-init"/);
  assert.match(html, /against [\d.]+ for the linear baseline/);
  assert.match(html, /the random-init control reaches [\d.]+ \(layer\.\d\)/);
  // compare two single-model runs (a run with its control has two rows per layer and probe)
  const c = join(tempDir(), 'c');
  assert.equal(runCli(['structural', ...QUICK, '--model', tiny, '--out', c]).status, 0);
  const b = join(tempDir(), 'b');
  assert.equal(runCli(['structural', ...QUICK, '--model', `random:${join(tiny, 'config.json')}`, '--out', b]).status, 0);
  const cmp = runCli(['compare', c, b, '--out', join(tempDir(), 'cmp'), '--json']);
  assert.equal(cmp.status, 0, cmp.stderr);
  const s = JSON.parse(cmp.stdout) as { meanDiff: Record<string, unknown> };
  assert.ok('uuas' in s.meanDiff);
  assert.ok(!('seconds' in s.meanDiff) && !('epochs' in s.meanDiff), `meanDiff keys: ${Object.keys(s.meanDiff)}`);
});

test('data info --help names only options data info takes; the compare example names folders that exist', () => {
  const r = runCli(['data', 'info', '--help']);
  assert.equal(r.status, 0);
  assert.doesNotMatch(r.stdout, /--train-split|--eval-split|--data PATH/);
  const c = runCli(['compare', '--help']);
  assert.match(c.stdout, /results\/structural-random-init-bert-base-uncased-ptb-\*/);
});

test('--model ./folder and --model /abs/folder are one model to the activation cache', () => {
  const cache = join(tempDir(), 'cache');
  const args = (m: string) => ['extract', '--data', 'ptb:test', '--model', m, '--layers', '1', '--json'];
  const abs = runCli(args(tiny), { env: { BERT_PROBE_CACHE: cache } });
  assert.equal(abs.status, 0, abs.stderr);
  const rel = runCli(args('./tiny-bert'), { cwd: fixturesDir, env: { BERT_PROBE_CACHE: cache } });
  assert.equal(rel.status, 0, rel.stderr);
  const [a, b] = [JSON.parse(abs.stdout), JSON.parse(rel.stdout)] as { store: string; computedSentences: number }[];
  assert.equal(b!.store, a!.store, 'the same store folder');
  assert.equal(b!.computedSentences, 0, 'the second spelling reuses the first one\'s activations');
});
