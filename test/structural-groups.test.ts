/**
 * The distance probe pads a batch's sentences in length groups (structural-train.ts lengthGroups,
 * blocks.ts StructuralInputs): the grouping is the cheapest one, and the loss and gradient do not
 * depend on it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Sentence } from '../src/corpus/types.js';
import { compileProbe, initParams } from '../src/probes/probe-model.js';
import { lengthGroups, structuralDefinition, structuralFeeds, type StructuralKind } from '../src/probes/structural-train.js';
import { mulberry32 } from '../src/util/random.js';

const cost = (lengths: number[], groups: number[][]) => groups.reduce((a, g) => a + (g.length ? g.length * Math.max(...g.map((k) => lengths[k]!)) ** 2 : 0), 0);

/** Every way to cut the sorted lengths into `groups` non-empty runs: the least padded Gram work. */
function bruteForce(lengths: number[], groups: number): number {
  const sorted = [...lengths].sort((a, b) => a - b);
  let best = Infinity;
  const walk = (from: number, left: number, acc: number): void => {
    if (left === 1) {
      best = Math.min(best, acc + (sorted.length - from) * sorted[sorted.length - 1]! ** 2);
      return;
    }
    for (let to = from + 1; to <= sorted.length - left + 1; to++) walk(to, left - 1, acc + (to - from) * sorted[to - 1]! ** 2);
  };
  walk(0, Math.min(groups, sorted.length), 0);
  return best;
}

test('lengthGroups: every sentence once, groups of consecutive lengths, the least padded Gram work', () => {
  const rand = mulberry32(5);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 9);
    const groups = 1 + Math.floor(rand() * 4);
    const lengths = Array.from({ length: n }, () => 1 + Math.floor(rand() * 40));
    const got = lengthGroups(lengths, groups);
    assert.equal(got.length, groups);
    assert.deepEqual(got.flat().sort((a, b) => a - b), lengths.map((_, i) => i), 'each sentence in exactly one group');
    const filled = got.filter((g) => g.length);
    for (let g = 1; g < filled.length; g++) assert.ok(Math.max(...filled[g - 1]!.map((k) => lengths[k]!)) <= Math.min(...filled[g]!.map((k) => lengths[k]!)), 'groups ordered by length');
    assert.equal(cost(lengths, got), bruteForce(lengths, groups), `lengths ${lengths} in ${groups}`);
  }
});

function randomSentence(n: number, rand: () => number, id: number): Sentence {
  const heads = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1 + Math.floor(rand() * i)));
  return { id: `s${id}`, source: { file: 'synthetic', line: id }, words: Array.from({ length: n }, (_, i) => `w${i}`), heads } as Sentence;
}

test('structural losses and gradients are the same in 1, 2, 3 or 4 length groups, and for a batch smaller than its groups', async () => {
  const H = 16;
  const rand = mulberry32(8);
  for (const kind of ['distance', 'depth'] as StructuralKind[]) {
    for (const b of [7, 2]) {
      const sentences = Array.from({ length: b }, (_, k) => randomSentence(1 + Math.floor(rand() * 12), rand, k));
      const words = sentences.reduce((a, s) => a + s.words.length, 0);
      const x = Float32Array.from({ length: words * H }, () => rand() * 2 - 1);
      const results: { loss: number; grad: Float32Array }[] = [];
      for (const groups of [1, 2, 3, 4]) {
        const def = structuralDefinition(kind, H, 8, groups);
        const probe = await compileProbe(def, { threads: 1 });
        const { loss, grads } = await probe.lossAndGrad(initParams(def, 3), structuralFeeds(sentences, x, kind, H, groups).feeds);
        await probe.dispose();
        results.push({ loss, grad: grads[0]! });
      }
      for (const r of results.slice(1)) {
        assert.ok(Math.abs(r.loss - results[0]!.loss) <= 1e-5 * Math.abs(results[0]!.loss), `${kind} b=${b}: loss ${r.loss} vs ${results[0]!.loss}`);
        const scale = Math.max(...results[0]!.grad.map(Math.abs));
        r.grad.forEach((v, i) => assert.ok(Math.abs(v - results[0]!.grad[i]!) <= 1e-5 * scale, `${kind} b=${b}: gradient entry ${i}`));
      }
    }
  }
});
