/**
 * summary.json of `bert-probe structural` against the rows it summarises (issue 16 bug 4): the best
 * layer of every metric is the argmax of that metric's rows (not the first, last or worst), the
 * baselines are the baseline and layer.0 rows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarize, type ResultRow } from '../src/probes/structural-family.js';

const row = (model: string, layer: string, probe: string, m: Partial<Record<'uuas' | 'dspr' | 'root_acc' | 'nspr', number | null>>): ResultRow => ({
  model, layer, probe, uuas: null, dspr: null, root_acc: null, nspr: null, sentences: 10, epochs: 1, best_dev_loss: 0.5, seconds: 0.1, ...m,
});

test('summary: best layer per metric is the argmax over that model\'s rows; baselines are copied', () => {
  const rows = [
    row('baseline', 'linear', 'distance', { uuas: 0.45, dspr: 0.55 }),
    row('baseline', 'linear', 'depth', { root_acc: 0.1, nspr: 0.2 }),
    // The best is in the middle (neither first nor last), and the worst is last.
    row('m', 'layer.0', 'distance', { uuas: 0.3, dspr: 0.6 }),
    row('m', 'layer.0', 'depth', { root_acc: 0.4, nspr: 0.5 }),
    row('m', 'layer.1', 'distance', { uuas: 0.7, dspr: 0.65 }),
    row('m', 'layer.1', 'depth', { root_acc: 0.8, nspr: 0.9 }),
    row('m', 'layer.2', 'distance', { uuas: 0.5, dspr: 0.75 }),
    row('m', 'layer.2', 'depth', { root_acc: 0.6, nspr: null }),
    row('m', 'layer.3', 'distance', { uuas: 0.2, dspr: 0.1 }),
    row('m', 'layer.3', 'depth', { root_acc: 0.05, nspr: 0.01 }),
    // Another model's higher values never count for m.
    row('random-init(m)', 'layer.0', 'distance', { uuas: 0.99, dspr: 0.99 }),
    row('random-init(m)', 'layer.0', 'depth', { root_acc: 0.99, nspr: 0.99 }),
  ];
  const s = summarize(rows, 'm', 'ptb', ['distance', 'depth']) as { best: Record<string, Record<string, { layer: string; value: number } | null>>; baselines: Record<string, Record<string, number | null>> };
  assert.deepEqual(s.best.m, {
    uuas: { layer: 'layer.1', value: 0.7 },
    dspr: { layer: 'layer.2', value: 0.75 },
    root_acc: { layer: 'layer.1', value: 0.8 },
    nspr: { layer: 'layer.1', value: 0.9 },
  });
  assert.deepEqual(s.best['random-init(m)']!.uuas, { layer: 'layer.0', value: 0.99 });
  assert.equal(s.best.baseline, undefined, 'the baseline is not a model with a best layer');
  assert.deepEqual(s.baselines.linear, { uuas: 0.45, dspr: 0.55, root_acc: 0.1, nspr: 0.2 });
  assert.deepEqual(s.baselines['layer.0'], { uuas: 0.3, dspr: 0.6, root_acc: 0.4, nspr: 0.5 });
});

test('summary: a metric with no value anywhere has no best layer; only the probes run are summarised', () => {
  const rows = [row('m', 'layer.0', 'distance', { uuas: null, dspr: 0.4 }), row('m', 'layer.1', 'distance', { uuas: null, dspr: 0.3 })];
  const s = summarize(rows, 'm', 'ptb', ['distance']) as { best: Record<string, Record<string, unknown>> };
  assert.deepEqual(s.best.m, { uuas: null, dspr: { layer: 'layer.0', value: 0.4 } });
});

test('summary: ties go to the first layer in row order; baselines and layer.0 found wherever their rows are', () => {
  const rows = [
    row('other', 'layer.0', 'distance', { uuas: 0.11, dspr: 0.12 }),
    row('other', 'layer.0', 'depth', { root_acc: 0.13, nspr: 0.14 }),
    row('m', 'layer.1', 'distance', { uuas: 0.6, dspr: 0.2 }),
    row('m', 'layer.1', 'depth', { root_acc: 0.5, nspr: 0.3 }),
    row('m', 'layer.0', 'distance', { uuas: 0.3, dspr: 0.4 }),
    row('m', 'layer.0', 'depth', { root_acc: 0.2, nspr: 0.25 }),
    row('m', 'layer.2', 'distance', { uuas: 0.6, dspr: 0.1 }),
    row('m', 'layer.2', 'depth', { root_acc: 0.5, nspr: 0.1 }),
    row('baseline', 'linear', 'distance', { uuas: 0.45, dspr: 0.55 }),
    row('baseline', 'linear', 'depth', { root_acc: 0.1, nspr: 0.2 }),
  ];
  const s = summarize(rows, 'm', 'ptb', ['distance', 'depth']) as { command: string; model: string; data: string; probes: string[]; best: Record<string, Record<string, unknown>>; baselines: Record<string, Record<string, number | null>> };
  assert.deepEqual([s.command, s.model, s.data, s.probes], ['structural', 'm', 'ptb', ['distance', 'depth']]);
  assert.deepEqual(s.best.m!.uuas, { layer: 'layer.1', value: 0.6 }, 'tie: the first');
  assert.deepEqual(s.best.m!.root_acc, { layer: 'layer.1', value: 0.5 });
  assert.deepEqual(s.best.m!.dspr, { layer: 'layer.0', value: 0.4 });
  assert.deepEqual(s.baselines.linear, { uuas: 0.45, dspr: 0.55, root_acc: 0.1, nspr: 0.2 });
  assert.deepEqual(s.baselines['layer.0'], { uuas: 0.3, dspr: 0.4, root_acc: 0.2, nspr: 0.25 });
});
