/** BufferPool (src/util/buffer-pool.ts): smallest fit, rounding, detached buffers skipped, a bounded free list. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../src/util/buffer-pool.js';

test('BufferPool hands back the smallest free buffer that fits, else a new one rounded up to 256 KiB', () => {
  const pool = new BufferPool(3);
  const a = pool.take(100_000);
  assert.equal(a.byteLength, 262144);
  const b = pool.take(600_000);
  assert.equal(b.byteLength, 786432);
  pool.give([b, a]);
  assert.equal(pool.take(200_000), a, 'the smallest that fits');
  assert.equal(pool.take(200_000), b, 'then the next');
  const c = pool.take(200_000);
  assert.ok(c !== a && c !== b, 'none free: a new one');
  pool.give([a, a]);
  assert.equal(pool.take(1), a);
  assert.notEqual(pool.take(1), a, 'given twice, held once');
});

test('BufferPool skips detached buffers and keeps at most `keep`, the largest', () => {
  const pool = new BufferPool(2);
  const moved = pool.take(10);
  structuredClone(moved, { transfer: [moved] });
  assert.equal(moved.byteLength, 0);
  const bufs = [1, 3, 2].map((k) => pool.take(k * 262144));
  pool.give([moved, ...bufs]);
  assert.equal(pool.take(1), bufs[2], '2 × 256 KiB: the smaller of the two kept');
  assert.equal(pool.take(1), bufs[1]);
  assert.ok(![...bufs].includes(pool.take(1)), 'the smallest was dropped');
});
