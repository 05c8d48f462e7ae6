/** Pieces of the probe runner (src/probes/runner.ts): seed spread, result columns, parallelism, the limiter. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateSeeds, limiter, meanSd, parallelism, resultColumns } from '../src/probes/runner.js';

test('meanSd: sample standard deviation (n − 1); none for one value', () => {
  assert.deepEqual(meanSd([2]), { mean: 2, sd: null });
  const r = meanSd([1, 2, 3, 4]);
  assert.equal(r.mean, 2.5);
  assert.ok(Math.abs(r.sd! - Math.sqrt(5 / 3)) < 1e-12);
});

test('aggregateSeeds: metrics become mean with _sd beside, matched by row position; other cells from the first seed', () => {
  const rows = aggregateSeeds(
    [
      [{ layer: 'a', uuas: 0.5, epochs: 3 }, { layer: 'b', uuas: null, epochs: 1 }],
      [{ layer: 'a', uuas: 0.7, epochs: 9 }, { layer: 'b', uuas: null, epochs: 2 }],
    ],
    ['uuas'],
  );
  assert.equal(rows[0]!.uuas, 0.6);
  assert.ok(Math.abs((rows[0]!.uuas_sd as number) - Math.sqrt(0.02)) < 1e-12);
  assert.equal(rows[0]!.epochs, 3);
  assert.equal(rows[0]!.seeds, 2);
  assert.equal(rows[1]!.uuas, null);
  assert.equal(rows[1]!.uuas_sd, null);
});

test('resultColumns: _sd after each metric and seeds at the end only under --seeds K > 1', () => {
  assert.deepEqual(resultColumns(['model', 'uuas', 'n'], ['uuas'], 1), ['model', 'uuas', 'n']);
  assert.deepEqual(resultColumns(['model', 'uuas', 'n'], ['uuas'], 3), ['model', 'uuas', 'uuas_sd', 'n', 'seeds']);
});

test('parallelism: a probe per core, one thread each, a unit started ahead; --jobs shares the cores', () => {
  // 2 cores, distance + depth: both cores train, the next unit waits for the first free core.
  assert.deepEqual(parallelism(2, undefined, 2), { jobs: 2, threads: 1, slots: 2 });
  assert.deepEqual(parallelism(2, undefined, 16), { jobs: 9, threads: 1, slots: 16 });
  // One probe per unit: a unit per core, nothing to start ahead.
  assert.deepEqual(parallelism(1, undefined, 4), { jobs: 4, threads: 1, slots: 4 });
  assert.deepEqual(parallelism(3, undefined, 2), { jobs: 2, threads: 1, slots: 2 });
  // --jobs: every probe of those units at once, the threads sharing the cores.
  assert.deepEqual(parallelism(2, 1, 16), { jobs: 1, threads: 8, slots: 2 });
  assert.deepEqual(parallelism(2, 4, 2), { jobs: 4, threads: 1, slots: 8 });
});

test('limiter: never more than n at once, all run, in call order', async () => {
  const limit = limiter(2);
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      limit(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5 + (i % 3) * 3));
        running--;
      }),
    ),
  );
  assert.equal(peak, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
});
