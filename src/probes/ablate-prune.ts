import { mulberry32, shuffled } from '../util/random.js';
import type { Recipe } from './ablate-importance.js';

/**
 * Pruning curves (Michel et al. 2019 §4.2; REFERENCES.md §2.4, §2.6): heads masked in order
 * of importance, a step at a time, the metric measured after each step.
 *
 *   michel     steps of 5% of all heads: n = int(total · p / 100) for p = 5, 10, …, 100
 *              (M16 heads_pruning.sh:10, pruning.py:37-73); importance computed once, before
 *              the first step (the paper's main curve), or before every step with --recompute
 *              (M16 --exact_pruning)
 *   bertology  steps of max(1, int(total · 0.1)) heads (run_bertology.py mask_heads ≈155-200),
 *              importance recomputed with the current mask before every step; HF stops when the
 *              score falls below 0.9 × the original — here the curve goes on to 100% and the
 *              stopping point is reported as `prunableFraction`
 *
 * Steps that would prune no new head (tiny models) are dropped. Heads already masked never
 * come back; among the rest the lowest importance goes first, ties by position (layer, head).
 */
export function pruningSchedule(recipe: Recipe, total: number): number[] {
  const counts: number[] = [];
  if (recipe === 'michel') {
    for (let p = 5; p <= 100; p += 5) counts.push(Math.floor((total * p) / 100));
  } else {
    const step = Math.max(1, Math.floor(total * 0.1));
    for (let c = step; c < total; c += step) counts.push(c);
    counts.push(total);
  }
  return [...new Set(counts)].filter((c) => c > 0).sort((a, b) => a - b);
}

/** Heads (flat l·heads + h) not yet masked, least important first. */
export function leastImportant(score: ArrayLike<number>, mask: ArrayLike<number>): number[] {
  const idx: number[] = [];
  for (let i = 0; i < score.length; i++) if (mask[i] !== 0) idx.push(i);
  return idx.sort((a, b) => score[a]! - score[b]! || a - b);
}

export interface CurvePoint {
  headsPruned: number;
  value: number;
}

export interface Curve {
  points: CurvePoint[];
  /** Every head in the order it was pruned. */
  order: number[];
}

/**
 * One curve. `rank(mask)` gives the remaining heads in pruning order for the current mask: a
 * fixed order (computed once, or random) ignores the mask beyond skipping pruned heads; a
 * recomputed one asks for fresh importance scores.
 */
export async function pruningCurve(
  total: number,
  counts: readonly number[],
  rank: (mask: Float32Array) => Promise<number[]>,
  evaluate: (mask: Float32Array) => Promise<number>,
  onStep?: () => void,
): Promise<Curve> {
  const mask = new Float32Array(total).fill(1);
  const order: number[] = [];
  const points: CurvePoint[] = [];
  for (const c of counts) {
    const next = (await rank(mask)).slice(0, c - order.length);
    for (const i of next) {
      mask[i] = 0;
      order.push(i);
    }
    points.push({ headsPruned: c, value: await evaluate(mask) });
    onStep?.();
  }
  return { points, order };
}

/** A fixed order as a `rank` function. */
export function fixedOrder(order: readonly number[]): (mask: Float32Array) => Promise<number[]> {
  return async (mask) => order.filter((i) => mask[i] !== 0);
}

/** The seeded random orders beside the importance curve (seeds seed+1 … seed+n). */
export function randomOrders(total: number, n: number, seed: number): number[][] {
  const all = Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: n }, (_, r) => shuffled(all, mulberry32(seed + r + 1)));
}

/**
 * HF's stopping rule, generalised to a loss: the largest count pruned before the first step
 * whose metric falls under `threshold` × the original (for a loss: rises above original /
 * threshold). 0 when the first step already does.
 */
export function prunableCount(baseline: number, points: readonly CurvePoint[], higherIsBetter: boolean, threshold: number): number {
  let ok = 0;
  for (const p of points) {
    const good = higherIsBetter ? p.value >= threshold * baseline : p.value * threshold <= baseline;
    if (!good) break;
    ok = p.headsPruned;
  }
  return ok;
}
