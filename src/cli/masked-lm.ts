import type { Command } from 'commander';
import { decodeUtf8, readBytes, splitLines } from '../corpus/source.js';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import type { LoadedModel } from '../model/types.js';
import { fillMask, pseudoLogLikelihood, requireMlmHead, type PllResult } from '../probes/masked-lm.js';
import { formatTable } from '../results/format.js';
import { createResultSet } from '../results/resultset.js';
import { barChart } from '../results/figures.js';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addRunOptions, isOffline, positiveInt, withExample, type CommonOptions, type ModelOptions, type OutputOptions } from './common.js';

/**
 * `bert-probe fill-mask TEXT` and `bert-probe complete`: the masked-LM head asked to fill gaps
 * and to rank endings by pseudo-log-likelihood (src/probes/masked-lm.ts). Where BERT lacks
 * commonsense or world knowledge, the ranking shows it.
 */
interface FillMaskOptions extends ModelOptions, OutputOptions {
  topK: number;
}

interface CompleteOptions extends CommonOptions {
  context?: string;
  endings?: string[];
  gold?: string;
  file?: string;
}

/** One completion item: a context, candidate endings, optionally the index of the right one. */
export interface CompletionItem {
  id: string;
  context: string;
  endings: string[];
  gold: number | null;
}

async function loadMlmModel(opts: ModelOptions, ui: Ui): Promise<LoadedModel> {
  const model = await loadModel(opts.model, { revision: opts.revision, offline: isOffline(opts), seed: opts.seed, ui });
  requireMlmHead(model);
  if (model.source.randomInit) ui.warn(`model ${model.source.id} is the random-init control: its predictions are noise`, true);
  return model;
}

export function register(program: Command): void {
  const fill = program
    .command('fill-mask')
    .description("the masked-LM head's top-k pieces for each [MASK] of a text (each mask ranked independently)")
    .argument('<text>', 'a sentence with one or more [MASK] tokens')
    .option('-k, --top-k <k>', 'candidates per mask', positiveInt('--top-k'), 5);
  addModelOptions(fill);
  addOutputOptions(fill);
  withExample(fill, 'bert-probe fill-mask "Paris is the [MASK] of France." -k 5');
  fill.action(action(async (ui: Ui, text: string, opts: FillMaskOptions) => runFillMask(ui, text, opts)));

  const complete = program
    .command('complete')
    .description('rank candidate endings of a context by pseudo-log-likelihood under the masked-LM head (each ending piece masked in turn)')
    .option('-c, --context <text>', 'the context (first part of the sentence)')
    .option('-e, --endings <text...>', 'candidate endings')
    .option('-g, --gold <n>', 'index (1-based) of the right ending, to report accuracy')
    .option('-f, --file <items.jsonl>', 'one item per line: {"context": "...", "endings": ["...", ...], "gold": 0-based index or the ending text (optional)}');
  addModelOptions(complete);
  addRunOptions(complete);
  addOutputOptions(complete);
  withExample(complete, 'bert-probe complete --context "She put the ice cream in the" --endings "freezer." "oven."');
  complete.action(action(async (ui: Ui, opts: CompleteOptions) => runComplete(ui, opts)));
}

async function runFillMask(ui: Ui, text: string, opts: FillMaskOptions): Promise<void> {
  const model = await loadMlmModel(opts, ui);
  const engine = await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
  try {
    const r = await fillMask(engine, model, text, opts.topK);
    const out = {
      model: model.source.id,
      random_init: model.source.randomInit,
      text,
      tokens: r.tokens,
      masks: r.masks.map((m, i) => ({ mask: i + 1, position: m.position, candidates: m.candidates })),
    };
    if (opts.json) {
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    for (const m of out.masks) {
      const rows = m.candidates.map((c, rank) => ({ rank: rank + 1, token: c.token, probability: c.probability }));
      process.stdout.write(`[MASK] ${m.mask} (piece ${m.position}):\n${formatTable(['rank', 'token', 'probability'], rows)}\n`);
    }
  } finally {
    await engine.dispose();
  }
}

/** Items from --file (JSONL) or from --context/--endings. */
export function completionItems(opts: Pick<CompleteOptions, 'context' | 'endings' | 'gold' | 'file'>): CompletionItem[] {
  if (opts.file !== undefined) {
    if (opts.context !== undefined || opts.endings !== undefined) {
      throw new InputError('--file and --context/--endings together', { expected: 'either a JSONL file or one item on the command line', found: 'both', fix: 'drop one of them' });
    }
    const text = decodeUtf8(readBytes(opts.file), opts.file);
    const items: CompletionItem[] = [];
    splitLines(text).forEach((line, i) => {
      if (!line.trim()) return;
      const where = { file: opts.file, line: i + 1 };
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        throw new InputError('not a JSON object', { ...where, expected: '{"context": "...", "endings": ["...", "..."], "gold": 0}', found: (err as Error).message, fix: 'write one JSON object per line' });
      }
      const o = obj as Record<string, unknown>;
      if (typeof o?.context !== 'string' || !Array.isArray(o.endings) || o.endings.length < 1 || !o.endings.every((e) => typeof e === 'string' && e.trim())) {
        throw new InputError('completion item lacks a context or endings', { ...where, expected: 'a string "context" and a non-empty array "endings" of non-empty strings', found: line.slice(0, 80), fix: 'add the missing field' });
      }
      const endings = o.endings as string[];
      let gold: number | null = null;
      if (o.gold !== undefined && o.gold !== null) {
        gold = typeof o.gold === 'number' ? o.gold : endings.indexOf(String(o.gold));
        if (!Number.isInteger(gold) || gold < 0 || gold >= endings.length) {
          throw new InputError('"gold" names no ending', { ...where, expected: `a 0-based index below ${endings.length} or one of the endings' text`, found: JSON.stringify(o.gold), fix: 'fix or drop "gold"' });
        }
      }
      items.push({ id: typeof o.id === 'string' ? o.id : `${opts.file}:${i + 1}`, context: o.context, endings, gold });
    });
    if (items.length === 0) throw new InputError('no completion items', { file: opts.file, expected: 'one JSON object per line', found: 'no non-empty line', fix: 'check the file' });
    return items;
  }
  if (opts.context === undefined || !opts.endings?.length) {
    throw new InputError('nothing to complete', { expected: '--context TEXT --endings A B ... or --file items.jsonl', found: opts.context === undefined ? 'no --context' : 'no --endings', fix: 'bert-probe complete --context "She put the ice cream in the" --endings "freezer." "oven."' });
  }
  let gold: number | null = null;
  if (opts.gold !== undefined) {
    const g = Number(opts.gold);
    if (!Number.isInteger(g) || g < 1 || g > opts.endings.length) throw new InputError('bad --gold', { expected: `1..${opts.endings.length}`, found: opts.gold, fix: 'give the 1-based index of the right ending' });
    gold = g - 1;
  }
  return [{ id: 'cli', context: opts.context, endings: opts.endings, gold }];
}

/** Pieces of raw text without [CLS]/[SEP]. */
function pieces(model: LoadedModel, text: string): number[] {
  const ids = model.tokenizer.encodeText(text).ids;
  return ids.slice(1, -1);
}

async function runComplete(ui: Ui, opts: CompleteOptions): Promise<void> {
  const items = completionItems(opts);
  const model = await loadMlmModel(opts, ui);
  const rs = await createResultSet({ command: 'complete', modelId: model.source.id, dataId: opts.file ?? 'cli', out: opts.out, force: opts.force, seed: opts.seed, ui, json: opts.json });
  rs.setManifest({
    model: { id: model.source.id, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    scoring: { method: 'pseudo-log-likelihood (Salazar et al. 2020): each ending piece masked in turn, context never masked; natural log; ranked by the sum over pieces', input: '[CLS] context-pieces ending-pieces [SEP], one segment' },
  });
  const engine = await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
  rs.setManifest({ engine: engine.kind, backend: engine.backend, precision: opts.precision });
  const rows: Record<string, unknown>[] = [];
  const records: Record<string, unknown>[] = [];
  let correct = 0;
  let withGold = 0;
  const bar = ui.bar('scoring', items.length, '{bar} {value}/{total} items | ETA {eta_formatted}');
  try {
    for (const item of items) {
      const ctx = pieces(model, item.context);
      const scored: (PllResult & { ending: string })[] = [];
      for (const ending of item.endings) scored.push({ ending, ...(await pseudoLogLikelihood(engine, model, ctx, pieces(model, ending), opts.batchSize)) });
      const best = scored.reduce((b, s, i) => (s.total > scored[b]!.total ? i : b), 0);
      if (item.gold !== null) {
        withGold++;
        if (best === item.gold) correct++;
      }
      scored.forEach((s, i) => {
        rows.push({ item: item.id, ending: i + 1, text: s.ending, pll: s.total, pll_per_piece: s.total / s.pieces.length, pieces: s.pieces.length, rank: 1 + scored.filter((o) => o.total > s.total).length, chosen: i === best, gold: item.gold === null ? null : i === item.gold });
      });
      records.push({ id: item.id, context: item.context, gold: item.gold, predicted: best, endings: scored.map((s) => ({ text: s.ending, pll: s.total, pieces: s.pieces })) });
      bar.increment();
    }
  } finally {
    bar.stop();
    await engine.dispose();
  }
  const columns = ['item', 'ending', 'text', 'pll', 'pll_per_piece', 'pieces', 'rank', 'chosen', 'gold'];
  rs.writeRows(rows as never, columns, {
    item: 'item id (file:line, the "id" field, or cli)',
    ending: '1-based index of the ending',
    text: 'the ending',
    pll: 'pseudo-log-likelihood: Σ over the ending pieces of log P(piece | rest), natural log',
    pll_per_piece: 'pll divided by the number of ending pieces',
    pieces: 'word pieces of the ending',
    rank: 'rank by pll within the item (1 = most likely)',
    chosen: 'the ending the model ranks first',
    gold: 'the right ending, where the item names one',
  });
  rs.writePredictions(records);
  const accuracy = withGold ? correct / withGold : null;
  if (items.length <= 20) {
    rs.addFigure('pll', barChart({ bars: rows.map((r) => ({ label: `${r.item}: ${String(r.text).slice(0, 30)}`, value: r.pll as number })), title: 'Pseudo-log-likelihood of each ending', yTitle: 'PLL (nats)' }), 'Higher is more likely under the masked-LM head.');
  }
  const summary: Record<string, unknown> = { command: 'complete', model: model.source.id, random_init: model.source.randomInit, items: items.length, items_with_gold: withGold, correct, accuracy };
  // Small runs carry their ranking in summary.json (so --json alone answers the question).
  if (items.length <= 100) summary.ranking = records.map((r) => ({ id: r.id, predicted: r.predicted, gold: r.gold, endings: (r.endings as { text: string; pll: number }[]).map((e) => ({ text: e.text, pll: e.pll })) }));
  await rs.finish(summary, { columns: ['item', 'ending', 'text', 'pll', 'pll_per_piece', 'rank', 'gold'], rows });
}
