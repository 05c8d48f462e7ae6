import type { Cell } from '../results/csv.js';
import { attnName } from '../util/names.js';
import type { ProgressBar } from '../util/ui.js';
import type { HeadGradients, Importance, Recipe } from './ablate-importance.js';
import { fixedOrder, leastImportant, prunableCount, pruningCurve, pruningSchedule, randomOrders, type Curve } from './ablate-prune.js';
import type { SpeedResult } from './ablate-speed.js';
import { spearman } from './metrics.js';

/**
 * Which heads matter (Michel, Levy & Neubig 2019), for one model: single-head ablation, keep
 * one head per layer, importance, pruning curves and the pruned model's speed, all against one
 * metric of the head mask. The metric and the importance source are given (MLM loss and
 * its tfjs gradients by default), so the same analyses serve any score.
 */
export type Analysis = 'ablation' | 'keep-one' | 'importance' | 'pruning' | 'speed';
export const ANALYSES: readonly Analysis[] = ['ablation', 'keep-one', 'importance', 'pruning', 'speed'];

export interface HeadMetric {
  /** Column value and axis title, e.g. 'mlm_loss'. */
  name: string;
  higherIsBetter: boolean;
  evaluate(mask: Float32Array): Promise<number>;
}

export interface AblateSettings {
  recipe: Recipe;
  /** Recompute importance before every pruning step (bertology always does; michel: --recompute). */
  recompute: boolean;
  analyses: ReadonlySet<Analysis>;
  randomOrders: number;
  seed: number;
  /** HF's masking threshold for `prunableFraction`. */
  threshold: number;
  /** Fraction of heads pruned (in importance order) for the speed measurement. */
  speedAt: number;
}

export interface AblateContext {
  /** The model's label in rows and figures. */
  label: string;
  layers: number;
  heads: number;
  metric: HeadMetric;
  /** Importance at a head mask (gradients through the model). */
  importance: (mask: Float32Array) => Promise<Importance & { gradients: HeadGradients }>;
  /** Pruned-model speed at a mask; null when no ONNX runtime is there. */
  speed: ((mask: Float32Array) => Promise<SpeedResult>) | null;
  stage: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  bar: (label: string, total: number) => ProgressBar;
}

export type Row = Record<string, Cell>;

export const RESULT_COLUMNS = [
  'model', 'recipe', 'analysis', 'metric', 'unit', 'layer', 'head', 'value', 'delta', 'importance_raw', 'order', 'heads_pruned', 'fraction_pruned', 'best',
] as const;

export const COLUMN_DESCRIPTIONS: Record<string, string> = {
  model: 'model label (random-init(...) for the control)',
  recipe: 'importance recipe: michel (M16 code) or bertology (HF run_bertology.py)',
  analysis: 'baseline | single-head (that head masked) | keep-one (only that head of its layer kept) | importance | pruning',
  metric: 'what value measures (mlm_loss: mean cross-entropy over the chosen pieces, nats; lower is better)',
  unit: 'attn.N.H: layer N, head H (1-based)',
  layer: 'layer, 1-based',
  head: 'head, 1-based',
  value: 'the metric with that mask; for importance rows the recipe\'s normalised importance score',
  delta: 'value minus the unmasked baseline',
  importance_raw: 'importance before the per-layer/global normalisation (after dividing by the token count)',
  order: 'pruning order: importance, or random.K (seeded)',
  heads_pruned: 'heads masked at this pruning step',
  fraction_pruned: 'heads_pruned / all heads',
  best: 'keep-one: 1 for the layer\'s best kept head',
};

export interface ModelAblation {
  label: string;
  baseline: number;
  rows: Row[];
  /** [layer][head] Δ of single-head ablation. */
  delta?: number[][];
  /** [layer][head] importance score. */
  importance?: number[][];
  curves?: { importance: Curve; random: Curve[] };
  summary: Record<string, unknown>;
}

const round = (v: number, digits = 6) => Number(v.toFixed(digits));

export async function runAblation(ctx: AblateContext, s: AblateSettings): Promise<ModelAblation> {
  const { layers: L, heads, metric, label } = ctx;
  const total = L * heads;
  const ones = () => new Float32Array(total).fill(1);
  const base = { model: label, recipe: s.recipe, metric: metric.name } as const;
  const headCells = (i: number) => ({ unit: attnName(Math.floor(i / heads) + 1, (i % heads) + 1), layer: Math.floor(i / heads) + 1, head: (i % heads) + 1 });
  const grid = (v: ArrayLike<number>) => Array.from({ length: L }, (_, l) => Array.from({ length: heads }, (_, h) => v[l * heads + h]!));
  const better = (a: number, b: number) => (metric.higherIsBetter ? a > b : a < b);

  const baseline = await ctx.stage(`${label}: baseline`, () => metric.evaluate(ones()));
  const rows: Row[] = [{ ...base, analysis: 'baseline', value: round(baseline), delta: 0 }];
  const out: ModelAblation = { label, baseline, rows, summary: { baseline: round(baseline) } };

  if (s.analyses.has('ablation')) {
    const delta = new Float64Array(total);
    await ctx.stage(`${label}: single-head ablation`, async () => {
      const bar = ctx.bar(`${label}: single-head ablation`, total);
      for (let i = 0; i < total; i++) {
        const m = ones();
        m[i] = 0;
        const v = await metric.evaluate(m);
        delta[i] = v - baseline;
        rows.push({ ...base, analysis: 'single-head', ...headCells(i), value: round(v), delta: round(v - baseline) });
        bar.increment();
      }
      bar.stop();
    });
    out.delta = grid(delta);
    // The most decisive head hurts the metric most when masked alone.
    const hurt = (i: number) => (metric.higherIsBetter ? -delta[i]! : delta[i]!);
    const ranked = Array.from({ length: total }, (_, i) => i).sort((a, b) => hurt(b) - hurt(a) || a - b);
    out.summary.singleHead = {
      mostDecisive: ranked.slice(0, 5).map((i) => ({ unit: headCells(i).unit, delta: round(delta[i]!) })),
      improvesWhenMasked: ranked.filter((i) => hurt(i) < 0).length,
      meanAbsDelta: round(delta.reduce((a, v) => a + Math.abs(v), 0) / total),
    };
  }

  if (s.analyses.has('keep-one')) {
    const perLayer: Record<string, unknown>[] = [];
    await ctx.stage(`${label}: keep one head per layer`, async () => {
      const bar = ctx.bar(`${label}: keep one head per layer`, total);
      for (let l = 0; l < L; l++) {
        const values: number[] = [];
        for (let h = 0; h < heads; h++) {
          // M16 --attention_mask_heads L:h --reverse_head_mask: every head of layer L but h masked.
          const m = ones();
          for (let k = 0; k < heads; k++) if (k !== h) m[l * heads + k] = 0;
          values.push(await metric.evaluate(m));
          bar.increment();
        }
        const best = values.reduce((bi, v, i) => (better(v, values[bi]!) ? i : bi), 0);
        values.forEach((v, h) => rows.push({ ...base, analysis: 'keep-one', ...headCells(l * heads + h), value: round(v), delta: round(v - baseline), best: h === best ? 1 : 0 }));
        perLayer.push({ layer: l + 1, bestHead: best + 1, unit: attnName(l + 1, best + 1), value: round(values[best]!), delta: round(values[best]! - baseline) });
      }
      bar.stop();
    });
    out.summary.keepOne = perLayer;
  }

  let importance: Importance | undefined;
  if (s.analyses.has('importance') || s.analyses.has('pruning') || s.analyses.has('speed')) {
    const imp = await ctx.stage(`${label}: head importance (${s.recipe})`, () => ctx.importance(ones()));
    importance = imp;
    out.importance = grid(imp.score);
    for (let i = 0; i < total; i++) rows.push({ ...base, analysis: 'importance', ...headCells(i), value: round(imp.score[i]!, 8), importance_raw: round(imp.raw[i]!, 10) });
    const top = Array.from({ length: total }, (_, i) => i).sort((a, b) => imp.score[b]! - imp.score[a]! || a - b);
    out.summary.importance = {
      mostImportant: top.slice(0, 5).map((i) => ({ unit: headCells(i).unit, score: round(imp.score[i]!) })),
      ...(out.delta
        ? {
            // Rank correlation of importance with how much masking the head alone hurts.
            spearmanWithAblation: round(
              spearman(
                imp.score,
                Float64Array.from(out.delta.flat(), (d) => (metric.higherIsBetter ? -d : d)),
              ),
            ),
          }
        : {}),
    };
  }

  if (importance && (s.analyses.has('pruning') || s.analyses.has('speed'))) {
    const imp = importance;
    const counts = pruningSchedule(s.recipe, total);
    const recompute = s.recipe === 'bertology' || s.recompute;
    const curves = await ctx.stage(`${label}: pruning curves`, async () => {
      const bar = ctx.bar(`${label}: pruning curves`, counts.length * (1 + (s.analyses.has('pruning') ? s.randomOrders : 0)));
      let first = true;
      const rank = recompute
        ? async (mask: Float32Array) => {
            // The importance at the full mask is the one computed above.
            const score = first ? imp.score : (await ctx.importance(mask)).score;
            first = false;
            return leastImportant(score, mask);
          }
        : fixedOrder(leastImportant(imp.score, ones()));
      const byImportance = await pruningCurve(total, counts, rank, (m) => metric.evaluate(m), () => bar.increment());
      const random: Curve[] = [];
      if (s.analyses.has('pruning')) {
        for (const order of randomOrders(total, s.randomOrders, s.seed)) random.push(await pruningCurve(total, counts, fixedOrder(order), (m) => metric.evaluate(m), () => bar.increment()));
      }
      bar.stop();
      return { importance: byImportance, random };
    });
    if (s.analyses.has('pruning')) {
      out.curves = curves;
      const curveRows = (c: Curve, order: string) =>
        c.points.forEach((p) => rows.push({ ...base, analysis: 'pruning', order, heads_pruned: p.headsPruned, fraction_pruned: round(p.headsPruned / total), value: round(p.value), delta: round(p.value - baseline) }));
      curveRows(curves.importance, 'importance');
      curves.random.forEach((c, r) => curveRows(c, `random.${r + 1}`));
      const prunable = prunableCount(baseline, curves.importance.points, metric.higherIsBetter, s.threshold);
      const randomPrunable = curves.random.map((c) => prunableCount(baseline, c.points, metric.higherIsBetter, s.threshold));
      out.summary.pruning = {
        recomputed: recompute,
        steps: counts.length,
        threshold: s.threshold,
        prunableFraction: round(prunable / total),
        randomPrunableFraction: randomPrunable.length ? round(randomPrunable.reduce((a, b) => a + b, 0) / randomPrunable.length / total) : null,
        atHalf: halfPoint(curves, total),
      };
    }
    if (s.analyses.has('speed')) {
      if (!ctx.speed) out.summary.speed = { skipped: 'onnxruntime-node is not available: the pruned model is an ONNX graph' };
      else {
        const n = Math.round(s.speedAt * total);
        const mask = ones();
        for (const i of curves.importance.order.slice(0, n)) mask[i] = 0;
        const r = await ctx.stage(`${label}: pruned-model speed at ${Math.round(s.speedAt * 100)}%`, () => ctx.speed!(mask));
        out.summary.speed = {
          headsPruned: r.headsPruned,
          fractionPruned: round(r.fractionPruned, 4),
          fullTokensPerSecond: Math.round(r.fullTokensPerSecond),
          prunedTokensPerSecond: Math.round(r.prunedTokensPerSecond),
          speedup: round(r.speedup, 3),
          rounds: r.rounds,
          maxAbsDiffVsMasked: r.maxAbsDiff,
          equalToMasked: r.maxAbsDiff <= 1e-4,
        };
      }
    }
  }
  return out;
}

/** Metric at the step nearest to half the heads pruned: importance order vs the random orders' mean. */
function halfPoint(c: { importance: Curve; random: Curve[] }, total: number): Record<string, number | null> | null {
  const pts = c.importance.points;
  if (!pts.length) return null;
  const k = pts.reduce((bi, p, i) => (Math.abs(p.headsPruned - total / 2) < Math.abs(pts[bi]!.headsPruned - total / 2) ? i : bi), 0);
  const rand = c.random.map((r) => r.points[k]!.value);
  return {
    fractionPruned: round(pts[k]!.headsPruned / total, 4),
    importanceOrder: round(pts[k]!.value),
    randomOrderMean: rand.length ? round(rand.reduce((a, b) => a + b, 0) / rand.length) : null,
  };
}
