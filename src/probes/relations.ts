/**
 * `bert-probe relations`: Coenen, Reif, Yuan et al. 2019 ("Visualizing and Measuring the Geometry
 * of BERT", §2) — linear probes on the model-wide attention vector of a word pair (L × H values,
 * 2·L·H with --symmetric; src/probes/attention-pairs.ts). Two units per model:
 *  - binary: is there a dependency arc between i and j? (arcs against `--negatives R` sampled
 *    non-arc pairs per arc, seeded);
 *  - relation: which relation labels the arc (arcs only).
 * Both are L2-regularised softmax regression on the shared trainer, λ chosen on dev
 * (src/probes/softmax-regression.ts). The authors released no code (REFERENCES.md §4.1): every
 * choice is in the manifest (describe) and in docs/probes.md.
 */
import type { FromPieces } from '../extract/align.js';
import type { ActivationRequest, ActivationSource } from '../extract/request.js';
import type { BertConfig } from '../model/types.js';
import { confusionMatrix, heatmap } from '../results/figures.js';
import type { ResultSet } from '../results/resultset.js';
import { RuntimeFailure } from '../util/errors.js';
import { argmaxRows, classificationReport, majorityBaseline, type ClassificationReport } from './classification.js';
import type { ProbeFamily, RunnerOptions, SplitData, SplitName, Unit, UnitContext, UnitResult } from './contract.js';
import type { PieceTokenizer } from './heads-compute.js';
import { collectPairs, type PairSet } from './relations-compute.js';
import { columnStats, DEFAULT_L2_GRID, fitSoftmaxRegression, predictLogits, standardize, type Dataset } from './softmax-regression.js';

export interface RelationsOptions extends RunnerOptions {
  probe: 'binary' | 'relation' | 'both';
  negatives: number;
  symmetric: boolean;
  fromPieces: FromPieces;
  l2?: number[];
  maxEpochs: number;
}

export const RELATIONS_PROBE_COLUMNS = ['model', 'probe', 'label', 'accuracy', 'precision', 'recall', 'f1', 'support', 'majority', 'chance', 'l2', 'dev_accuracy', 'epochs', 'train_pairs', 'top_heads'] as const;

export const RELATIONS_PROBE_DESCRIPTIONS: Record<string, string> = {
  model: 'model id (random-init controls are labelled)',
  probe: 'binary: is there an arc between the two words (either direction)? relation: which relation labels the arc (arcs only)',
  label: '"all" for the whole test set; else one class (arc / no-arc, or a relation)',
  accuracy: 'test accuracy (row "all"); a class row repeats nothing here',
  precision: 'test precision of this class',
  recall: 'test recall of this class',
  f1: 'test F1 of this class; on the "all" row the macro average over classes present in test',
  support: 'test items (all) or test items of this class',
  majority: 'accuracy of always answering train\'s most frequent class (all row)',
  chance: '1 / number of classes (all row)',
  l2: 'the L2 strength λ (loss + λ‖W‖²) chosen on dev',
  dev_accuracy: 'dev accuracy with that λ',
  epochs: 'training epochs of the kept classifier (early stopping on dev accuracy)',
  train_pairs: 'training items',
  top_heads: 'layer-head (1-based) of the three features with the largest weight for this class (W[:,c] minus the mean over classes, standardised features); "r" marks the j→i block of --symmetric',
};

interface UnitState {
  report: ClassificationReport;
  labels: string[];
  /** Weight of each feature for each class (W[:,c] − mean over classes), [F, C]. */
  weights: Float32Array;
  F: number;
  heads: number;
}

const layersOf = (config: BertConfig): number[] => Array.from({ length: config.numHiddenLayers }, (_, i) => i + 1);

/** Feature f → "layer-head" (with "r" for the reversed block). */
function featureName(f: number, layers: readonly number[], H: number): string {
  const block = layers.length * H;
  const rev = f >= block;
  const k = f % block;
  return `${layers[Math.floor(k / H)]}-${(k % H) + 1}${rev ? 'r' : ''}`;
}

/** A fresh family per run (it caches the pair sets of a model's splits for both units, and keeps what the figures need). */
export function relationsFamily(): ProbeFamily<RelationsOptions> {
  const pairCache = new WeakMap<ActivationSource, Promise<PairSet>>();
  const state = new Map<string, UnitState>();
  const order: string[] = [];

  const pairsOf = (split: SplitData, opts: RelationsOptions, layers: number[], tokenizer: PieceTokenizer | null, seed: number): Promise<PairSet> => {
    let p = pairCache.get(split.activations);
    if (!p) {
      // Negatives are seeded by --seed and the split (not by the repetition under --seeds).
      const salt: Record<SplitName, number> = { train: 1, dev: 2, test: 3 };
      p = collectPairs(split.sentences, split.activations, tokenizer, { layers, negatives: opts.negatives, symmetric: opts.symmetric, seed: seed * 4 + salt[split.name], fromPieces: opts.fromPieces });
      pairCache.set(split.activations, p);
    }
    return p;
  };

  const runUnit = async (ctx: UnitContext<RelationsOptions>): Promise<UnitResult> => {
    const { opts, unit, splits, ui } = ctx;
    const binary = unit.key === 'binary';
    const layers = unit.layers;
    const H = splits.test.activations.numHeads;
    const tokenizer: PieceTokenizer = ctx.model.tokenizer;
    const [tr, dv, te] = await Promise.all((['train', 'dev', 'test'] as const).map((k) => pairsOf(splits[k], opts, layers, tokenizer, opts.seed)));
    const F = tr!.F;
    // Labels: binary arc/no-arc; relation: the relations of train arcs (sorted), unseen ones → −1.
    const labels = binary ? ['no-arc', 'arc'] : [...new Set(tr!.pairs.filter((p) => p.arc).map((p) => p.rel!))].sort();
    if (labels.length < 2) throw new RuntimeFailure(`relations ${unit.key}: the training split has ${labels.length} class(es); need at least 2`);
    const index = new Map(labels.map((l, i) => [l, i]));
    const dataset = (set: PairSet): { data: Dataset; rows: number[] } => {
      const rows = set.pairs.map((_, i) => i).filter((i) => binary || set.pairs[i]!.arc);
      const x = new Float32Array(rows.length * F);
      rows.forEach((r, k) => x.set(set.features.subarray(r * F, (r + 1) * F), k * F));
      const y = Int32Array.from(rows, (r) => (binary ? (set.pairs[r]!.arc ? 1 : 0) : index.get(set.pairs[r]!.rel!) ?? -1));
      return { data: { x, y }, rows };
    };
    const [dTr, dDv, dTe] = [dataset(tr!), dataset(dv!), dataset(te!)];
    const stats = columnStats(dTr.data.x, F);
    for (const d of [dTr, dDv, dTe]) standardize(d.data.x, F, stats);
    // Dev items of a class unseen in train cannot be fitted: leave them out of selection.
    const devKeep = [...dDv.data.y.keys()].filter((i) => dDv.data.y[i]! >= 0);
    const dev: Dataset = { x: new Float32Array(devKeep.length * F), y: Int32Array.from(devKeep, (i) => dDv.data.y[i]!) };
    devKeep.forEach((r, k) => dev.x.set(dDv.data.x.subarray(r * F, (r + 1) * F), k * F));
    const C = labels.length;
    const fit = await fitSoftmaxRegression({
      train: dTr.data, dev, features: F, classes: C, l2Grid: opts.l2 ?? DEFAULT_L2_GRID, seed: ctx.seed, maxEpochs: opts.maxEpochs, device: opts.device,
      onFit: (l2, acc, ep) => ui.debug(`${ctx.model.label} relations ${unit.key}: λ ${l2} dev accuracy ${acc.toFixed(4)} (${ep} epochs)`),
    });
    try {
      const testY = dTe.data.y;
      const pred = argmaxRows(await predictLogits(fit.probe, fit.params, { x: dTe.data.x, y: testY.map((v) => Math.max(v, 0)) }, F, C), C);
      const report = classificationReport(testY, pred, labels);
      const majority = majorityBaseline(dTr.data.y, testY, C);
      if (report.unseen) ui.warn(`relations ${unit.key}: ${report.unseen} test arc(s) carry a relation never seen in train: scored wrong`);
      const W = fit.params[0]!;
      const weights = new Float32Array(F * C);
      for (let f = 0; f < F; f++) {
        let mean = 0;
        for (let c = 0; c < C; c++) mean += W[f * C + c]! / C;
        for (let c = 0; c < C; c++) weights[f * C + c] = W[f * C + c]! - mean;
      }
      const top = (c: number) => [...Array(F).keys()].sort((a, b) => weights[b * C + c]! - weights[a * C + c]!).slice(0, 3).map((f) => featureName(f, layers, H)).join(' ');
      const base = { model: ctx.model.label, probe: unit.key, l2: fit.l2, dev_accuracy: fit.devAccuracy, epochs: fit.epochs, train_pairs: dTr.rows.length };
      const rows: Record<string, unknown>[] = [
        { ...base, label: 'all', accuracy: report.accuracy, precision: null, recall: null, f1: report.macroF1, support: report.total, majority: majority.accuracy, chance: 1 / C, top_heads: null },
        ...report.perClass.map((c, k) => ({ ...base, label: c.label, accuracy: null, precision: c.precision, recall: c.recall, f1: c.f1, support: c.support, majority: null, chance: null, top_heads: top(k) })),
      ];
      const records = dTe.rows.map((r, k) => {
        const p = te!.pairs[r]!;
        return { model: ctx.model.label, probe: unit.key, sentence: splits.test.sentences[p.sentence]!.id, i: p.i, j: p.j, gold: testY[k]! >= 0 ? labels[testY[k]!] : p.rel, predicted: labels[pred[k]!] };
      });
      if (ctx.seedIndex === 0) {
        const key = `${ctx.model.label}\u0000${unit.key}`;
        if (!state.has(key)) order.push(key);
        state.set(key, { report, labels, weights, F, heads: H });
      }
      return {
        rows,
        records,
        params: { names: ['W', 'b', 'feature_mean', 'feature_sd'], shapes: [[F, C], [C], [F], [F]], values: [fit.params[0]!, fit.params[1]!, Float32Array.from(stats.mean), Float32Array.from(stats.sd)] },
        training: { l2Grid: fit.grid, chosen: fit.l2, labels },
      } as UnitResult;
    } finally {
      await fit.probe.dispose();
    }
  };

  const family: ProbeFamily<RelationsOptions> = {
    command: 'relations',
    requires: ['trees'],
    accept: (s) => (s.deprels && s.deprels.length === s.words.length ? null : 'no dependency relations'),
    activations: (opts, config): ActivationRequest => ({ layers: [], attentionLayers: layersOf(config), rawAttention: opts.fromPieces === 'first' }),
    units: (opts, config): Unit[] => (opts.probe === 'both' ? ['binary', 'relation'] : [opts.probe]).map((k) => ({ key: k, label: k, layers: layersOf(config), kind: 'model' as const })),
    runUnit,
    columns: RELATIONS_PROBE_COLUMNS,
    columnDescriptions: RELATIONS_PROBE_DESCRIPTIONS,
    metrics: ['accuracy', 'precision', 'recall', 'f1', 'dev_accuracy'],
    summarize(rows) {
      const all = rows.filter((r) => r.label === 'all');
      const pick = (probe: string) => all.find((r) => r.probe === probe);
      return {
        command: 'relations',
        binary_accuracy: pick('binary')?.accuracy ?? null,
        relation_accuracy: pick('relation')?.accuracy ?? null,
        models: all.map((r) => ({ model: r.model, probe: r.probe, accuracy: r.accuracy, macro_f1: r.f1, majority: r.majority, chance: r.chance, l2: r.l2, test_items: r.support })),
        reference: 'Coenen et al. 2019 report 85.8% (binary) and 71.9% (relation) on BERT-base with setup details they did not release',
      };
    },
    figures(rs: ResultSet, _rows, _records, opts) {
      const multi = new Set(order.map((k) => k.split('\u0000')[0])).size > 1;
      for (const key of order) {
        const [label, probe] = key.split('\u0000') as [string, string];
        const st = state.get(key)!;
        const suffix = `${probe}${multi ? `-${label.replace(/[^A-Za-z0-9]+/g, '-')}` : ''}`;
        const C = st.labels.length;
        const block = st.F / (opts.symmetric ? 2 : 1);
        const weightGrid = (c: number, rev: boolean, L: number, heads: number) => Array.from({ length: L }, (_, l) => Array.from({ length: heads }, (_, h) => st.weights[((rev ? block : 0) + l * heads + h) * C + c]!));
        const heads = st.heads;
        const L = block / heads;
        const classes = probe === 'binary' ? [1] : [...st.report.perClass.keys()].sort((a, b) => st.report.perClass[b]!.support - st.report.perClass[a]!.support).slice(0, 6);
        for (const c of classes) {
          for (const rev of opts.symmetric ? [false, true] : [false]) {
            const name = `weights-${suffix}-${st.labels[c]!.replace(/[^A-Za-z0-9]+/g, '-')}${rev ? '-reverse' : ''}`;
            rs.addFigure(name, heatmap({ values: weightGrid(c, rev, L, heads), title: `${label} ${probe}: classifier weight of each head for "${st.labels[c]}"${rev ? ' (attention j→i)' : ''}`, valueTitle: 'weight', scheme: 'redblue' }), `weight of each head's attention (standardised) for class ${st.labels[c]}, layer × head`);
          }
        }
        if (C <= 60) rs.addFigure(`confusion-${suffix}`, confusionMatrix({ labels: st.labels, counts: st.report.confusion, title: `${label} ${probe}: confusion on test`, normalize: probe !== 'binary' }), 'gold down, predicted across');
      }
    },
    describe: (opts) => ({
      features: `word-level attention i→j in every head of every layer${opts.symmetric ? ', then j→i' : ''} (Coenen et al.'s model-wide attention vector)`,
      fromPieces: opts.fromPieces,
      positives: 'one per dependency arc: the ordered pair (dependent, head); arcs to ROOT have no pair; punct arcs kept',
      negatives: `${opts.negatives} per arc: ordered non-arc pairs of the same sentence, without replacement, seeded by --seed and the split`,
      classifier: 'softmax regression, loss mean cross-entropy + λ‖W‖², features z-scored with train statistics, Adam lr 0.01, batch 256, early stopping on dev accuracy',
      l2Grid: opts.l2 ?? DEFAULT_L2_GRID,
      maxEpochs: opts.maxEpochs,
      relationLabels: 'the relations of train arcs; test arcs with an unseen relation count as errors',
      reference: 'Coenen et al. 2019 (no code released; REFERENCES.md §4.1 UNVERIFIED details)',
    }),
  };
  return family;
}
