import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { readPassInChild, writeSyntheticStore } from '../bench/store-read.js';
import { tempDir } from './helpers.js';

/**
 * Reads do not grow with the corpus (issue 9 item 4), measured: the same batched scalar-mix read
 * pattern (4 layers per batch of 20 shuffled sentences, 256-d) over stores of 150, 2,000 and 8,000
 * sentences, each pass in its own process (peak RSS). Node frees read buffers at garbage
 * collection, so peak RSS rises from the tiny store to a plateau (tens of MiB of not-yet-collected
 * batches) and then stays there: 2,000 → 8,000 sentences must not move it by a quarter of what
 * a split-sized read would add. The control, one whole layer read at once (the old readLayer), must show that
 * layer's size, or the measurement could not see growth at all.
 */
test('batched positional reads: peak RSS flat in corpus size (whole-layer read as the control)', () => {
  const words = (n: number) => Array.from({ length: n }, (_, i) => 5 + ((i * 7) % 26));
  const root = tempDir();
  try {
    const dirs = [150, 2000, 8000].map((n) => {
      const dir = join(root, `s${n}`);
      writeSyntheticStore(dir, words(n), 256, 4, 64);
      return dir;
    });
    const layerMiB = (n: number) => (words(n).reduce((a, b) => a + b, 0) * 256 * 4) / 2 ** 20;
    const [tiny, mid, large] = dirs.map((d) => readPassInChild(d, 4, 20, 'batches'));
    const whole = readPassInChild(dirs[2]!, 1, 20, 'whole-layer');
    const f = (x: number) => x.toFixed(1);
    console.log(`# peak RSS MiB, 4 layers in batches of 20: 150 sentences ${f(tiny!.peakRssMiB)}, 2000 ${f(mid!.peakRssMiB)}, 8000 ${f(large!.peakRssMiB)}; one whole layer of 8000 (${f(layerMiB(8000))} MiB) ${f(whole.peakRssMiB)}; largest read ${(large!.largestReadMiB * 1024).toFixed(0)} KiB; load ${loadavg()[0]!.toFixed(2)}`);
    assert.ok(large!.largestReadMiB * 2 ** 20 <= 20 * 30 * 256 * 4, 'no read exceeds a batch');
    assert.ok(whole.peakRssMiB - tiny!.peakRssMiB > 0.75 * layerMiB(8000), 'control: a whole-layer read shows its size');
    // a split-sized read would grow by layerMiB(8000) − layerMiB(2000) ≈ 100 MiB here
    assert.ok(large!.peakRssMiB - mid!.peakRssMiB < 0.25 * (layerMiB(8000) - layerMiB(2000)), `batched reads grew ${f(large!.peakRssMiB - mid!.peakRssMiB)} MiB from 2000 to 8000 sentences`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
