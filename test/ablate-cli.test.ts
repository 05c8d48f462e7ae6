/**
 * `bert-probe ablate` end to end through the data mirror (issue 12, "Must show"): tiny-bert on
 * EWT with the random-init control, the full results folder, and the numbers in results.csv
 * recomputed from the library (same seed, same sentences). Needs `npm run build`.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { loadCorpus } from '../src/corpus/load.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { fitting, maskSentences, mlmScore, mlmSet } from '../src/probes/ablate-mlm.js';
import { RESULT_COLUMNS } from '../src/probes/ablate.js';
import { dataMirror, fixturesDir, runCli, tempDir } from './helpers.js';

test('ablate on EWT with tiny-bert and --control random: full results folder, values recomputable', async () => {
  const out = join(tempDir(), 'run');
  const model = join(fixturesDir, 'tiny-bert');
  const r = runCli(['ablate', '--data', 'ewt', '--model', model, '--control', 'random', '--limit', '12', '--random-orders', '2', '--seed', '5', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['results.csv', 'summary.json', 'manifest.json', 'report.html', 'ablation-delta.svg', 'importance.svg', 'pruning-curve.svg', 'importance-vs-ablation.svg', 'ablation-delta-control.svg', 'pruning-curve-control.svg']) {
    assert.ok(existsSync(join(out, f)), `${f} written`);
  }
  const csv = readFileSync(join(out, 'results.csv'), 'utf8');
  assert.equal(csv.split('\n')[0], RESULT_COLUMNS.join(','));
  const rows = parse(csv, { columns: true }) as Record<string, string>[];
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.status, 'finished');
  assert.equal(manifest.ablate.recipe, 'michel');
  assert.equal(manifest.ablate.recipeDetails.importanceData, 'train split');
  assert.equal(summary.recipe, 'michel');
  const labels = Object.keys(summary.models);
  assert.equal(labels.length, 2);
  assert.ok(labels[1]!.startsWith('random-init('), labels[1]);
  for (const label of labels) {
    const mine = rows.filter((x) => x.model === label);
    assert.ok(mine.every((x) => x.recipe === 'michel' && x.metric === 'mlm_loss'));
    const count = (a: string) => mine.filter((x) => x.analysis === a).length;
    assert.equal(count('baseline'), 1);
    assert.equal(count('single-head'), 12);
    assert.equal(count('keep-one'), 12);
    assert.equal(count('importance'), 12);
    // 12 heads: michel steps prune 1, 2, …, 12 heads; the importance order and 2 random ones.
    assert.equal(count('pruning'), 36);
    const s = summary.models[label];
    assert.equal(typeof s.importance.spearmanWithAblation, 'number');
    assert.equal(s.speed.equalToMasked, true, `pruned graph vs masked: ${s.speed.maxAbsDiffVsMasked}`);
    assert.equal(s.speed.headsPruned, 6);
    assert.equal(s.keepOne.length, 3);
  }

  // The baseline and one single-head row, recomputed with the library.
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
  const m = await loadModel(model, { offline: true });
  const corpus = await loadCorpus('ewt:test', { offline: true });
  const enc = fitting(corpus.sentences.slice(0, 12).map((x) => m.tokenizer.encodeWords(x.words)), m.config.maxPositionEmbeddings).kept;
  const set = mlmSet(maskSentences(enc, { seed: 5, mode: '80-10-10', maskId: m.tokenizer.maskId, vocabSize: m.config.vocabSize }), 16, m.tokenizer.padId);
  const engine = await createEngine(m, { engine: 'onnx' });
  try {
    const base = rows.find((x) => x.model === labels[0] && x.analysis === 'baseline')!;
    assert.ok(Math.abs(Number(base.value) - (await mlmScore(engine, set)).loss) < 1e-5);
    const mask = new Float32Array(12).fill(1);
    mask[4] = 0; // attn.2.1
    const row = rows.find((x) => x.model === labels[0] && x.analysis === 'single-head' && x.unit === 'attn.2.1')!;
    const v = (await mlmScore(engine, set, mask)).loss;
    assert.ok(Math.abs(Number(row.value) - v) < 1e-5);
    assert.ok(Math.abs(Number(row.delta) - (v - Number(base.value))) < 2e-5);
  } finally {
    await engine.dispose();
  }
});

test('ablate --recipe bertology --json: recipe in every output; bad input exits 2', () => {
  const out = join(tempDir(), 'run');
  const model = join(fixturesDir, 'tiny-bert');
  const r = runCli(['ablate', '--data', 'ewt', '--model', model, '--recipe', 'bertology', '--analyses', 'importance,pruning', '--mask-mode', 'all-mask', '--limit', '8', '--random-orders', '1', '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.recipe, 'bertology');
  assert.equal(summary.metric.maskMode, 'all-mask');
  const s = summary.models[Object.keys(summary.models)[0]!];
  assert.equal(s.pruning.recomputed, true);
  assert.equal(s.singleHead, undefined);
  const scores = s.importance.mostImportant.map((x: { score: number }) => x.score);
  assert.equal(scores[0], 1, 'bertology min-max: the top head scores 1');
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  assert.equal(manifest.ablate.recipeDetails.globalNormalisation, 'min-max to [0, 1]');
  // 12 heads, 10% steps of max(1, int(1.2)) = 1 head.
  assert.equal(manifest.ablate.recipeDetails.steps.length, 12);

  const bad = runCli(['ablate', '--data', 'ewt', '--model', model, '--analyses', 'everything', '--out', join(tempDir(), 'x')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--analyses: 'everything' is not one of/);
  const noHead = runCli(['ablate', '--data', 'ewt', '--model', join(fixturesDir, 'tiny-bert-model-only-f16'), '--limit', '4', '--out', join(tempDir(), 'y')]);
  assert.equal(noHead.status, 2);
  assert.match(noHead.stderr, /no masked-LM head/);
});

test('ablate --probe-run: a saved structural probe, re-scored with heads masked, gives back its UUAS unmasked', () => {
  const model = join(fixturesDir, 'tiny-bert');
  const run = join(tempDir(), 'structural');
  const s = runCli(['structural', '--data', 'ewt', '--model', model, '--probe', 'distance', '--layers', '3', '--limit', '30', '--max-epochs', '3', '--out', run]);
  assert.equal(s.status, 0, s.stderr);
  const out = join(tempDir(), 'ablate');
  const r = runCli(['ablate', '--model', model, '--probe-run', run, '--limit', '30', '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout);
  assert.equal(summary.metric.name, 'uuas');
  assert.equal(summary.data, 'ewt', 'the probe run\'s data by default');
  const label = Object.keys(summary.models)[0]!;
  const m = summary.models[label];
  // Unmasked, the saved probe scores what its run reported at that layer (same sentences, same vectors).
  assert.ok(Math.abs(m.baseline - summary.metric.uuasInRun) < 1e-6, `${m.baseline} vs ${summary.metric.uuasInRun}`);
  const rows = parse(readFileSync(join(out, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  const single = rows.filter((x) => x.analysis === 'single-head');
  assert.equal(single.length, 12);
  assert.equal(rows.filter((x) => x.analysis === 'keep-one').length, 12);
  assert.equal(rows.filter((x) => x.analysis === 'importance').length, 0);
  // The embeddings (layer.0) do not depend on any head; a deeper layer does on some.
  if (summary.metric.layer === 'layer.0') assert.ok(single.every((x) => Number(x.delta) === 0));
  else assert.ok(single.some((x) => Number(x.delta) !== 0));

  const explicit = runCli(['ablate', '--model', model, '--probe-run', run, '--analyses', 'importance', '--out', join(tempDir(), 'x')]);
  assert.equal(explicit.status, 2);
  assert.match(explicit.stderr, /cannot be computed for a saved probe/);
  const other = runCli(['ablate', '--model', `random:${model}`, '--probe-run', run, '--out', join(tempDir(), 'y')]);
  assert.equal(other.status, 2);
  assert.match(other.stderr, /trained on another model/);
});
