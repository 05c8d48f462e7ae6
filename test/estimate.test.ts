import assert from 'node:assert/strict';
import test from 'node:test';
import type { BertConfig } from '../src/model/types.js';
import { EFFICIENCY, estimateRun, extractionFlops, forwardFlops, measureMatmulGflops, PIECES_PER_WORD } from '../src/probes/estimate.js';
import { structuralFamily, type StructuralOptions } from '../src/probes/structural-family.js';

const tiny = { hiddenSize: 4, intermediateSize: 8, numHiddenLayers: 2 } as BertConfig;

test('forwardFlops: per layer 2·(4H² + 2HI) per piece plus 4·n·H per piece, by hand', () => {
  // n = 3, H = 4, I = 8: 2·(64 + 64) = 256 per piece, 4·3·4 = 48 per piece → 304 · 3 pieces · 2 layers.
  assert.equal(forwardFlops(tiny, 3), 1824);
  // Words → pieces at PIECES_PER_WORD, plus [CLS] and [SEP].
  const n = Math.ceil(4 * PIECES_PER_WORD) + 2;
  assert.equal(extractionFlops(tiny, [4, 4]), 2 * forwardFlops(tiny, n));
});

test('estimateRun: extraction on every core, training `slots` at once, at the measured speed × efficiency', () => {
  const e = estimateRun({ gflopsPerCore: 100, extractFlops: 2 * 100e9 * EFFICIENCY.extract * 60, cached: false, training: { fits: 4, flopsPerFit: 100e9 * EFFICIENCY.train * 30, maxFlopsPerFit: 100e9 * EFFICIENCY.train * 60, what: 'probe fits' }, slots: 2, cores: 2 });
  assert.ok(Math.abs(e.extractSeconds - 60) < 1e-9, `extraction ${e.extractSeconds}`);
  // 4 fits of 30 s on one core each, 2 at once: 60 s.
  assert.ok(Math.abs(e.trainSeconds - 60) < 1e-9, `training ${e.trainSeconds}`);
  assert.ok(Math.abs(e.maxSeconds - 180) < 1e-9);
  assert.match(e.text, /≈ 2 min on this machine \(extraction ≈ 60 s; training ≈ 60 s: 4 probe fits, 2 at once, up to 3 min/);
  // A cached store costs nothing; one slot trains one probe at a time.
  const c = estimateRun({ gflopsPerCore: 100, extractFlops: 0, cached: true, training: { fits: 4, flopsPerFit: 100e9 * EFFICIENCY.train * 30, what: 'probe fits' }, slots: 1, cores: 2 });
  assert.equal(c.extractSeconds, 0);
  assert.ok(Math.abs(c.trainSeconds - 120) < 1e-9);
  assert.match(c.text, /activations cached/);
});

test('structural trainingWork: 4·W·H·r per epoch on train, 2·W·H·r on dev and once on test, by hand', () => {
  const opts = { layers: '0,1', probe: 'both', maxEpochs: 40 } as StructuralOptions;
  const w = structuralFamily.trainingWork!(opts, tiny, { train: [3, 2], dev: [2], test: [1] });
  assert.equal(w.fits, 4); // layers 0 and 1, distance and depth
  const epoch = 4 * 5 * 4 * 4 + 2 * 2 * 4 * 4;
  assert.equal(w.flopsPerFit, 20 * epoch + 2 * 1 * 4 * 4);
  assert.equal(w.maxFlopsPerFit, 40 * epoch + 2 * 1 * 4 * 4);
});

test('measureMatmulGflops measures a positive, finite speed', async () => {
  const g = await measureMatmulGflops();
  assert.ok(Number.isFinite(g) && g > 0, String(g));
});
