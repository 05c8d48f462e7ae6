import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poolWords, wordAttention } from '../src/extract/align.js';
import { planWindows, ownerWindows } from '../src/extract/windows.js';
import { padBatch, planBatches } from '../src/extract/batching.js';

// Five pieces: [CLS] p1 p2 p3 [SEP]; word 0 = p1 p2, word 1 = p3. Hidden size 2.
const states = Float32Array.from([0, 0, 1, 2, 3, 4, 5, 10, 9, 9]);
const spans: [number, number][] = [[1, 3], [3, 4]];

test('pooling pieces to words: mean, first, last (hand-computed)', () => {
  const out = new Float32Array(4);
  poolWords(states, 2, spans, 'mean', out);
  assert.deepEqual([...out], [2, 3, 5, 10]);
  poolWords(states, 2, spans, 'first', out);
  assert.deepEqual([...out], [1, 2, 5, 10]);
  poolWords(states, 2, spans, 'last', out);
  assert.deepEqual([...out], [3, 4, 5, 10]);
  const withOffset = new Float32Array(6).fill(7);
  poolWords(states, 2, [[2, 2], [1, 2]], 'mean', withOffset, 2);
  assert.deepEqual([...withOffset], [7, 7, 0, 0, 1, 2], 'a word with no pieces gets zeros; offset respected');
});

test('word-level attention (Clark et al. 2019): to = sum over pieces, from = mean over pieces, [CLS]/[SEP] kept', () => {
  const att = Float32Array.from([
    0.1, 0.2, 0.3, 0.2, 0.2,
    0.5, 0.1, 0.1, 0.1, 0.2,
    0.3, 0.3, 0.1, 0.1, 0.2,
    0.0, 0.4, 0.4, 0.1, 0.1,
    0.2, 0.2, 0.2, 0.2, 0.2,
  ]);
  // second head: identity-like attention, to check heads stay separate
  const two = new Float32Array(50);
  two.set(att);
  for (let i = 0; i < 5; i++) two[25 + i * 5 + i] = 1;
  const w = wordAttention(two, 2, 5, spans);
  const expected = [
    [0.1, 0.5, 0.2, 0.2],
    [0.4, 0.3, 0.1, 0.2],
    [0.0, 0.8, 0.1, 0.1],
    [0.2, 0.4, 0.2, 0.2],
    // head 2: CLS→CLS 1; word0 rows p1→p1, p2→p2 (both in word 0) → 1 to word 0; word1→word1; SEP→SEP
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ].flat();
  assert.equal(w.length, 32);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(w[i]! - expected[i]!) < 1e-6, `entry ${i}: ${w[i]} vs ${expected[i]}`);
  for (let r = 0; r < 8; r++) {
    const s = w.subarray(r * 4, r * 4 + 4).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(s - 1) < 1e-6, 'rows still sum to 1');
  }
});

test('windows: stride half the window, last window aligned to the end, maximum-context owners', () => {
  assert.deepEqual(planWindows(5, 62), [{ start: 0, end: 5 }]);
  assert.deepEqual(planWindows(10, 4, 2), [{ start: 0, end: 4 }, { start: 2, end: 6 }, { start: 4, end: 8 }, { start: 6, end: 10 }]);
  assert.deepEqual([...ownerWindows(10, planWindows(10, 4, 2))], [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]);
  assert.deepEqual(planWindows(7, 4), [{ start: 0, end: 4 }, { start: 2, end: 6 }, { start: 3, end: 7 }]);
  // tiny-bert: 64 positions → 62 pieces per window, stride 31
  const w = planWindows(200, 62);
  assert.deepEqual(w.map((x) => x.start), [0, 31, 62, 93, 124, 138]);
  const owner = ownerWindows(200, w);
  assert.equal(owner[0], 0);
  assert.equal(owner[46], 0, 'piece 46: 15 pieces after it in window 0, 15 before it in window 1: tie goes to the earlier');
  assert.equal(owner[47], 1, 'piece 47: 14 after it in window 0, 16 before it in window 1');
  assert.equal(owner[199], 5);
  assert.ok([...owner].every((o) => o >= 0), 'every piece has a window');
});

test('length-bucketed batches: longest first, ties in input order; padding', () => {
  assert.deepEqual(planBatches([3, 5, 5, 1, 4], 2), [[1, 2], [4, 0], [3]]);
  const b = padBatch([[101, 7, 102], [101, 102]], 0);
  assert.equal(b.seqLen, 3);
  assert.deepEqual([...b.inputIds], [101, 7, 102, 101, 102, 0]);
  assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 1, 0]);
  assert.throws(() => planBatches([1], 0));
  // token cap: at most 12 padded tokens per batch; an over-long sequence still gets its own batch
  assert.deepEqual(planBatches([2, 20, 6, 5, 3, 3, 3, 3], 8, 12), [[1], [2, 3], [4, 5, 6, 7], [0]]);
});
