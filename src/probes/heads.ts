/**
 * `bert-probe heads`: what the attention heads do (Clark, Khandelwal, Levy & Manning 2019, "What
 * Does BERT Look At?"; REFERENCES.md §1), as a probe family on the runner (issue 11):
 *  - surface statistics per head at word-piece level (attention to [CLS], [SEP], "." / ",", next,
 *    previous, self; [SEP]→[SEP], rest→[SEP]; entropies) — src/probes/attention-stats.ts;
 *  - head accuracy per dependency relation, both directions, with the −3…+2 offset baseline —
 *    src/probes/head-accuracy.ts — written to relations.csv;
 *  - head clustering: Jensen–Shannon distances between heads, classical MDS — head-distances.ts;
 *  - the Attn-only parser probe (§1.5) — attn-parser.ts, attn-parser-fit.ts.
 * Everything is measured on the evaluation split (test, or --eval-split); the parser trains on
 * train and selects on dev. One unit per model (`heads`): every statistic needs all heads at once.
 */
import type { Sentence } from '../corpus/types.js';
import type { FromPieces } from '../extract/align.js';
import type { ActivationRequest } from '../extract/request.js';
import type { BertConfig } from '../model/types.js';
import { attentionMap, heatmap, scatter } from '../results/figures.js';
import type { ResultSet } from '../results/resultset.js';
import { RuntimeFailure } from '../util/errors.js';
import { attnName } from '../util/names.js';
import { fitAttnParser, type ParserFit } from './attn-parser-fit.js';
import { SURFACE_KEYS, type SurfaceKey } from './attention-stats.js';
import type { ProbeFamily, RunnerOptions, Unit, UnitContext, UnitResult } from './contract.js';
import { BASELINE_OFFSETS, POSS_RELATIONS } from './head-accuracy.js';
import { bestForRelation, headsPass, type HeadsPass, type PieceTokenizer } from './heads-compute.js';
import { sentenceWordMaps } from './relations-compute.js';

export interface HeadsOptions extends RunnerOptions {
  fromPieces: FromPieces;
  minCount: number;
  distanceSentences: number;
  parser: boolean;
  parserEpochs: number;
  transpose: boolean;
  /** 0-based index (in the evaluation split) of the sentence whose attention maps are drawn. */
  example?: number;
}

const STAT_COLUMNS: Record<SurfaceKey, string> = {
  cls: 'attn_cls', sep: 'attn_sep', punct: 'attn_punct', self: 'attn_self', next: 'attn_next', prev: 'attn_prev', sep_sep: 'attn_sep_sep', rest_sep: 'attn_rest_sep',
};

export const HEADS_COLUMNS = ['model', 'layer', 'head', ...SURFACE_KEYS.map((k) => STAT_COLUMNS[k]), 'entropy', 'cls_entropy', 'uniform_entropy', 'mds_x', 'mds_y', 'best_relation', 'best_relation_acc', 'sentences'] as const;

export const HEADS_DESCRIPTIONS: Record<string, string> = {
  model: 'model id (random-init controls are labelled)',
  layer: 'attention layer, 1-based',
  head: 'head within the layer, 1-based (the paper writes layer-head, e.g. 8-10)',
  attn_cls: 'mean over sentences of the mean over word pieces of the attention to [CLS] (piece level, Clark et al. §3.1)',
  attn_sep: 'the same, attention to [SEP]',
  attn_punct: 'the same, attention to the pieces "." and ","',
  attn_self: 'the same, attention of each piece to itself',
  attn_next: 'the same, attention to the next piece (j = i+1)',
  attn_prev: 'the same, attention to the previous piece (j = i−1)',
  attn_sep_sep: 'attention from [SEP] to [SEP] (mean over [SEP] rows)',
  attn_rest_sep: 'attention from the other pieces to [SEP] (mean over non-[SEP] rows)',
  entropy: 'entropy (nats) of the smoothed attention 0.9999A + 0.0001/n, averaged over every piece row, then over sentences (§3.3)',
  cls_entropy: 'the same for the row of [CLS] only',
  uniform_entropy: 'mean over sentences of ln n (the entropy of uniform attention), the same in every row',
  mds_x: 'classical MDS of the Jensen–Shannon distances between heads (§6): x',
  mds_y: 'the same: y',
  best_relation: 'the relation (count ≥ --min-count, root and punct left out) this head predicts best of all heads, if any',
  best_relation_acc: 'its accuracy (relations.csv has every head × relation × direction)',
  sentences: 'evaluation sentences whose attention entered the statistics',
};

export const RELATIONS_COLUMNS = ['model', 'relation', 'direction', 'layer', 'head', 'accuracy', 'correct', 'count'] as const;

export const RELATIONS_DESCRIPTIONS: Record<string, string> = {
  model: 'model id (random-init controls are labelled)',
  relation: 'gold dependency relation of the word; "all" counts every word (punct and root included, as the authors)',
  direction: 'dep->head: the word each word attends to most; head<-dep: the word that attends most to it; "offset" for the baseline',
  layer: 'attention layer, 1-based (empty for the baseline)',
  head: 'head within the layer, 1-based; offset-3 … offset+2 for the fixed-offset baseline (predicted head = word i + k, clamped)',
  accuracy: 'share of the words with this relation whose gold head is the predicted one (argmax of the word-level attention row with [CLS]/[SEP] and the diagonal removed; possessives scored by the next word when it is \'s)',
  correct: 'words predicted correctly',
  count: 'words with this relation in the evaluation split',
};

export const BEST_COLUMNS = ['model', 'relation', 'count', 'head', 'direction', 'accuracy', 'baseline', 'baseline_accuracy'] as const;

interface ModelState {
  pass: HeadsPass;
  parser: ParserFit | null;
  relationRows: Record<string, unknown>[];
  best: Record<string, unknown>[];
  example: { sentence: Sentence; maps: Float32Array[] } | null;
  numHeads: number;
  layers: number[];
}

const offsetLabel = (k: number): string => `offset${k >= 0 ? '+' : ''}${k}`;

function layersOf(config: BertConfig): number[] {
  return Array.from({ length: config.numHiddenLayers }, (_, i) => i + 1);
}

/** A fresh family per run: it keeps what one run computed for relations.csv, the figures and the summary. */
export function headsFamily(): ProbeFamily<HeadsOptions> {
  const state = new Map<string, ModelState>();
  const order: string[] = [];

  const runUnit = async (ctx: UnitContext<HeadsOptions>): Promise<UnitResult> => {
    const { opts, unit, splits, ui } = ctx;
    const test = splits.test;
    const src = test.activations;
    const tokenizer: PieceTokenizer = ctx.model.tokenizer;
    const layers = unit.layers;
    const H = src.numHeads;
    const bar = ui.bar(`${ctx.model.label} heads`, test.sentences.length, '{bar} {value}/{total} sentences');
    const pass = await headsPass(test.sentences, src, tokenizer, {
      layers,
      fromPieces: opts.fromPieces,
      distanceSentences: opts.distanceSentences,
      seed: ctx.seed,
      onSentence: () => bar.increment(1),
    });
    bar.stop();
    if (pass.skipped.noAttention) ui.warn(`${pass.skipped.noAttention} evaluation sentence(s) longer than the model's positions have no attention: left out`);
    if (pass.skipped.mismatch) throw new RuntimeFailure(`${pass.skipped.mismatch} sentence(s): the tokenizer's pieces differ from the stored attention; were the activations made with another model?`);
    if (pass.level === 'word') ui.warn('the activations hold word-level attention only: the piece-level surface statistics (§3) are left empty; extract with raw attention for them');

    // relations.csv rows and the best-head table.
    const relations = pass.counts.relations();
    const relationRows: Record<string, unknown>[] = [];
    for (const rel of relations) {
      const count = pass.counts.total.get(rel)!;
      pass.predictors.forEach((p, i) => {
        const correct = pass.counts.correct.get(rel)![i]!;
        relationRows.push(p.offset === null
          ? { model: ctx.model.label, relation: rel, direction: p.direction, layer: p.layer, head: p.head, accuracy: correct / count, correct, count }
          : { model: ctx.model.label, relation: rel, direction: 'offset', layer: null, head: offsetLabel(p.offset), accuracy: correct / count, correct, count });
      });
    }
    const best: Record<string, unknown>[] = [];
    const bestHeadOf = new Map<string, { rel: string; acc: number }>();
    for (const rel of relations) {
      const count = pass.counts.total.get(rel)!;
      // The paper's table: relations with ≥ min-count occurrences, root and punct left out (cell 8).
      if (rel === 'root' || rel === 'punct' || count < opts.minCount) continue;
      const b = bestForRelation(pass, rel);
      const p = pass.predictors[b.head]!;
      const acc = pass.counts.accuracy(rel, b.head);
      best.push({ model: ctx.model.label, relation: rel, count, head: `${p.layer}-${p.head}`, direction: p.direction, accuracy: acc, baseline: offsetLabel(pass.predictors[b.offset]!.offset!), baseline_accuracy: pass.counts.accuracy(rel, b.offset) });
      if (rel !== 'all') {
        const key = `${p.layer}.${p.head}`;
        const prev = bestHeadOf.get(key);
        if (!prev || acc > prev.acc) bestHeadOf.set(key, { rel, acc });
      }
    }

    // Attn-only parser.
    let parser: ParserFit | null = null;
    if (opts.parser) {
      parser = await fitAttnParser({ sentences: splits.train.sentences, reader: splits.train.activations }, { sentences: splits.dev.sentences, reader: splits.dev.activations }, { sentences: test.sentences, reader: src }, {
        layers,
        transpose: opts.transpose,
        fromPieces: opts.fromPieces,
        tokenizer,
        seed: ctx.seed,
        epochs: opts.parserEpochs,
        device: opts.device,
        onEpoch: (e, uas) => ui.debug(`${ctx.model.label} Attn-only parser: epoch ${e} dev UAS ${uas.toFixed(4)}`),
      });
    }

    // The example sentence: the given one, else the first of 8–20 words with attention.
    let example: ModelState['example'] = null;
    const ex = opts.example ?? test.sentences.findIndex((s, i) => s.words.length >= 8 && s.words.length <= 20 && src.hasAttention(i));
    if (ex >= 0 && ex < test.sentences.length && src.hasAttention(ex)) {
      example = { sentence: test.sentences[ex]!, maps: await sentenceWordMaps(src, tokenizer, layers, ex, test.sentences[ex]!.words, opts.fromPieces) };
    }

    // results.csv rows: one per head.
    const rows: Record<string, unknown>[] = [];
    layers.forEach((l, li) => {
      for (let h = 0; h < H; h++) {
        const s = pass.surface?.[li];
        const stat = (k: SurfaceKey) => (s ? s.attention[k][h]! : null);
        const point = pass.distances?.points[li * H + h];
        const b = bestHeadOf.get(`${l}.${h + 1}`);
        rows.push({
          model: ctx.model.label, layer: l, head: h + 1,
          ...Object.fromEntries(SURFACE_KEYS.map((k) => [STAT_COLUMNS[k], stat(k)])),
          entropy: s ? s.entropy[h]! : null, cls_entropy: s ? s.clsEntropy[h]! : null, uniform_entropy: s ? s.uniformEntropy : null,
          mds_x: point ? point[0]! : null, mds_y: point ? point[1]! : null,
          best_relation: b?.rel ?? null, best_relation_acc: b?.acc ?? null,
          sentences: pass.sentencesScored,
        });
      }
    });

    // predictions.jsonl: per evaluation sentence, the predictions of every head that is best at a relation (and of the parser).
    const keep = [...new Set(best.map((b) => `${b.head} ${b.direction}`))];
    const keepIdx = keep.map((k) => {
      const [lh, dir] = k.split(' ');
      const [l, h] = lh!.split('-').map(Number);
      return pass.predictors.findIndex((p) => p.layer === l && p.head === h && p.direction === dir);
    });
    const parserBySentence = new Map(parser?.predictions.map((p) => [p.sentence, p.heads]) ?? []);
    const records = pass.predictions.map(({ sentence, preds }) => {
      const s = test.sentences[sentence]!;
      const n = s.words.length;
      return {
        model: ctx.model.label,
        sentence: s.id,
        words: s.words,
        heads: s.heads,
        deprels: s.deprels,
        head_predictions: Object.fromEntries(keep.map((k, j) => [k, [...preds.subarray(keepIdx[j]! * n, (keepIdx[j]! + 1) * n)]])),
        ...(parserBySentence.has(sentence) ? { attn_only_parser: parserBySentence.get(sentence) } : {}),
      };
    });

    if (ctx.seedIndex === 0) {
      if (!state.has(ctx.model.label)) order.push(ctx.model.label);
      state.set(ctx.model.label, { pass, parser, relationRows, best, example, numHeads: H, layers });
    }
    const result: UnitResult = { rows, records };
    if (parser) result.params = parser.params;
    return result;
  };

  return {
    command: 'heads',
    requires: ['trees'],
    accept: (s) => (s.deprels && s.deprels.length === s.words.length ? null : 'no dependency relations'),
    activations: (_opts, config): ActivationRequest => ({ layers: [], attentionLayers: layersOf(config), rawAttention: true }),
    units: (_opts, config): Unit[] => [{ key: 'heads', label: 'all heads', layers: layersOf(config), kind: 'model' }],
    runUnit,
    columns: HEADS_COLUMNS,
    columnDescriptions: HEADS_DESCRIPTIONS,
    summarize(rows, opts) {
      const models = order.map((label) => {
        const st = state.get(label)!;
        const own = rows.filter((r) => r.model === label);
        const mean = (col: string) => {
          const v = own.map((r) => r[col]).filter((x): x is number => typeof x === 'number');
          return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
        };
        return {
          model: label,
          sentences: st.pass.sentencesScored,
          level: st.pass.level,
          mean_entropy: mean('entropy'),
          uniform_entropy: own[0]?.uniform_entropy ?? null,
          mean_attn_sep: mean('attn_sep'),
          mean_attn_cls: mean('attn_cls'),
          best_heads: st.best,
          attn_only_parser: st.parser ? { uas: st.parser.uas, words: st.parser.total, dev_uas: st.parser.devUas, epochs: st.parser.epochs, maps: st.parser.maps, root_weights: st.parser.root } : null,
          head_distances: st.pass.distances ? { sentences: st.pass.distances.sentences, level: st.pass.distances.level } : null,
        };
      });
      const main = models[0];
      return {
        command: 'heads',
        from_pieces: opts.fromPieces,
        min_count: opts.minCount,
        all_accuracy: main?.best_heads.find((b) => b.relation === 'all')?.accuracy ?? null,
        attn_only_uas: main?.attn_only_parser?.uas ?? null,
        models,
      };
    },
    figures(rs: ResultSet, rows, _records, opts) {
      rs.writeTable('relations.csv', order.flatMap((m) => state.get(m)!.relationRows) as never, RELATIONS_COLUMNS, RELATIONS_DESCRIPTIONS);
      rs.writeTable('best-heads.csv', order.flatMap((m) => state.get(m)!.best) as never, BEST_COLUMNS, {
        relation: 'gold relation (count ≥ --min-count; root and punct left out, as the paper\'s table)',
        head: 'best layer-head (1-based) over both directions', baseline: 'best fixed offset in −3…+2', baseline_accuracy: 'its accuracy',
      });
      for (const label of order) {
        const st = state.get(label)!;
        const own = rows.filter((r) => r.model === label);
        const suffix = order.length > 1 ? `-${label.replace(/[^A-Za-z0-9]+/g, '-')}` : '';
        const grid = (col: string) => st.layers.map((l) => Array.from({ length: st.numHeads }, (_, h) => {
          const v = own.find((r) => r.layer === l && r.head === h + 1)?.[col];
          return typeof v === 'number' ? v : null;
        }));
        if (st.pass.surface) {
          for (const k of SURFACE_KEYS) rs.addFigure(`${STAT_COLUMNS[k].replace(/_/g, '-')}${suffix}`, heatmap({ values: grid(STAT_COLUMNS[k]), title: `${label}: ${HEADS_DESCRIPTIONS[STAT_COLUMNS[k]]!.split(' (')[0]}`, valueTitle: STAT_COLUMNS[k], domain: [0, 1], rowLabels: st.layers }), `${STAT_COLUMNS[k]} per head (layer × head)`);
          rs.addFigure(`entropy${suffix}`, heatmap({ values: grid('entropy'), title: `${label}: attention entropy (nats)`, valueTitle: 'entropy', rowLabels: st.layers }), 'entropy of each head\'s attention, averaged over pieces');
          rs.addFigure(`cls-entropy${suffix}`, heatmap({ values: grid('cls_entropy'), title: `${label}: entropy of the attention from [CLS]`, valueTitle: 'entropy', rowLabels: st.layers }), 'entropy of the [CLS] row');
          rs.addFigure(`entropy-vs-sep${suffix}`, scatter({
            points: own.map((r) => ({ x: r.attn_sep as number, y: r.entropy as number, label: `${r.layer}-${r.head}`, group: `layer ${r.layer}` })),
            xTitle: 'average attention to [SEP]', yTitle: 'entropy (nats)', title: `${label}: entropy against attention to [SEP]`, showLabels: false,
          }), 'each head: its entropy against its attention to [SEP] (Clark et al. Figure 2–4 style)');
        }
        if (st.pass.distances) {
          rs.addFigure(`head-mds${suffix}`, scatter({
            points: own.map((r) => ({ x: r.mds_x as number, y: r.mds_y as number, label: `${r.layer}-${r.head}`, group: `layer ${r.layer}` })),
            xTitle: 'MDS 1', yTitle: 'MDS 2', title: `${label}: heads embedded by their Jensen–Shannon distances (classical MDS)`, showLabels: false,
          }), `classical MDS of the mean JS divergence between heads over ${st.pass.distances.sentences} sentences, coloured by layer`);
        }
        const allRel = st.relationRows.filter((r) => r.relation === 'all' && r.direction !== 'offset');
        for (const dir of ['dep->head', 'head<-dep']) {
          const values = st.layers.map((l) => Array.from({ length: st.numHeads }, (_, h) => (allRel.find((r) => r.direction === dir && r.layer === l && r.head === h + 1)?.accuracy as number) ?? null));
          rs.addFigure(`accuracy-all-${dir === 'dep->head' ? 'dep-head' : 'head-dep'}${suffix}`, heatmap({ values, title: `${label}: head accuracy over all words, ${dir}`, valueTitle: 'accuracy', domain: [0, 1], rowLabels: st.layers }), `share of words whose gold head is the most attended word (${dir})`);
        }
        if (st.example) {
          const s = st.example.sentence;
          const G = s.words.length + 2;
          const tokens = ['[CLS]', ...s.words, '[SEP]'];
          const shown = st.best.filter((b) => b.relation !== 'all').slice(0, 8);
          for (const b of shown) {
            const [l, h] = String(b.head).split('-').map(Number);
            const m = st.example.maps[st.layers.indexOf(l!)]!;
            const weights = Array.from({ length: G }, (_, i) => Array.from(m.subarray((h! - 1) * G * G + i * G, (h! - 1) * G * G + (i + 1) * G)));
            rs.addFigure(`attention-${l}-${h}${suffix}`, attentionMap({ tokens, weights, title: `${label}: head ${l}-${h} (best at ${b.relation}) on ${s.id}` }), `word-level attention of head ${attnName(l!, h!)} on one sentence`);
          }
        }
      }
      void opts;
    },
    describe: (opts) => ({
      fromPieces: opts.fromPieces,
      fromPiecesNote: opts.fromPieces === 'mean' ? 'rows of a split word = mean of its pieces\' rows (the paper, bpe_utils.py:62)' : 'rows of a split word = its first piece\'s row (the released code\'s default)',
      minCount: opts.minCount,
      baselineOffsets: BASELINE_OFFSETS,
      possRule: { relations: [...POSS_RELATIONS], next: ["'s", "s'"] },
      evaluation: 'statistics and head accuracy over the evaluation split (test unless --eval-split)',
      surfaceLevel: 'word pieces of [CLS] sentence [SEP] (one segment; the authors used two-segment Wikipedia documents)',
      sepDenominators: 'sep_sep: number of [SEP] rows; rest_sep: the other rows (the authors\' 2 and n−2 for two [SEP]s)',
      distances: { sentences: opts.distanceSentences, smoothing: '0.999A + 0.001/n (head_distances.py)', normalisation: 'summed JS divided by the number of query rows', embedding: 'classical MDS (the authors: scikit-learn SMACOF)' },
      parser: opts.parser ? { maps: opts.transpose ? 'maps and transposes (288 for BERT-base)' : 'maps only', epochs: opts.parserEpochs, learningRate: 0.002, batch: '1 sentence', loss: 'mean over words', uas: 'argmax head, gold punct left out, no tree decoding' } : null,
    }),
  };
}
