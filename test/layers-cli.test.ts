/**
 * `bert-probe layers` end to end through the mirror (issue 10): pos (all modes, with the
 * random-init control), ner, srl and deps on the fixture model; every F1 in results.csv
 * recomputed from predictions.jsonl, Δ and the expected layer from the rows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { expectedLayer, microF1 } from '../src/probes/edge-scores.js';
import { scoredLabel, type EdgeTask } from '../src/probes/edge-targets.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

const QUICK = ['--model', join(fixturesDir, 'tiny-bert'), '--limit', '12', '--max-steps', '3', '--val-interval', '3', '--batch-sentences', '8'];

function readRun(dir: string) {
  const csv = readFileSync(join(dir, 'results.csv'), 'utf8');
  const rows = parse(csv, { columns: true }) as Record<string, string>[];
  const records = readFileSync(join(dir, 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { header: csv.split('\n')[0], rows, records, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')), manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) };
}

/** Every row's F1 equals micro-F1 recomputed from its (model, mode, layer) records. */
function assertRecomputable(task: EdgeTask, rows: Record<string, string>[], records: { model: string; mode: string; layer: string; targets: { gold: string[]; predicted: string[] }[] }[]): void {
  for (const r of rows) {
    const layer = r.mode === 'mix' ? 'mix' : r.layer;
    const mine = records.filter((x) => x.model === r.model && x.mode === r.mode && x.layer === layer);
    assert.ok(mine.length > 0, `${r.model} ${r.mode} ${r.layer}: records`);
    const f = microF1(mine.flatMap((x) => x.targets), scoredLabel(task));
    assert.equal(Number(r.f1), f.f1, `${r.model} ${r.mode} ${r.layer} F1`);
    assert.equal(Number(r.examples), mine.reduce((a, x) => a + x.targets.length, 0));
  }
}

test('layers --task pos: single, mix and cumulative with the random-init control; every F1 recomputable', () => {
  const out = join(tempDir(), 'pos');
  const r = runCli(['layers', '--task', 'pos', '--control', 'random', '--layers', '0,3', ...QUICK, '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const run = readRun(out);
  assert.equal(run.header, 'model,task,mode,layer,f1,precision,recall,mix_weight,delta,examples,epochs,seconds');
  const models = [...new Set(run.rows.map((x) => x.model))];
  assert.equal(models.length, 2);
  assert.ok(models.some((m) => m.startsWith('random-init')));
  for (const m of models) {
    const mine = run.rows.filter((x) => x.model === m);
    assert.deepEqual(mine.filter((x) => x.mode === 'single').map((x) => x.layer), ['layer.0', 'layer.3']);
    const mix = mine.filter((x) => x.mode === 'mix');
    assert.equal(mix.length, 4);
    assert.ok(Math.abs(mix.reduce((a, x) => a + Number(x.mix_weight), 0) - 1) < 1e-6, 'mix weights sum to 1');
    const cum = mine.filter((x) => x.mode === 'cumulative');
    const P = cum.map((x) => Number(x.f1));
    cum.forEach((x, l) => assert.ok(Math.abs(Number(x.delta) - (P[l]! - (l ? P[l - 1]! : 0))) < 1e-12, `Δ(${l})`));
    const s = run.summary.models[m];
    assert.equal(s.expected_layer, expectedLayer(P));
    assert.ok(Math.abs(s.center_of_gravity - mix.reduce((a, x, l) => a + l * Number(x.mix_weight), 0)) < 1e-9);
  }
  assertRecomputable('pos', run.rows, run.records);
  assert.match(JSON.stringify(run.manifest.probe ?? run.manifest), /lexical/);
});

test('layers for ner, srl (two splits in the mirror: train on dev) and deps; F1 recomputable', () => {
  const dir = tempDir();
  for (const [task, extra] of [['ner', ['--train-split', 'dev', '--eval-split', 'test']], ['srl', ['--train-split', 'dev', '--eval-split', 'test']], ['deps', []]] as [EdgeTask, string[]][]) {
    const out = join(dir, task);
    const r = runCli(['layers', '--task', task, '--mode', 'single', '--layers', '0,3', '--control', 'random', ...QUICK, ...extra, '--out', out]);
    assert.equal(r.status, 0, `${task}: ${r.stderr}`);
    const run = readRun(out);
    assert.equal(run.rows.length, 4, `${task}: two layers × (model, random-init control)`);
    assertRecomputable(task, run.rows, run.records);
    if (task === 'srl') assert.ok(run.records.some((x: { targets: { span2?: number[] }[] }) => x.targets.some((t) => t.span2)), 'two-span targets');
  }
  const bad = runCli(['layers', '--task', 'pos,nosuch', ...QUICK, '--out', join(dir, 'bad')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /bad --task/);
});
