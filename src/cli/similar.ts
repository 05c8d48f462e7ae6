import { Option, type Command } from 'commander';
import { decodeUtf8, readBytes, splitLines } from '../corpus/source.js';
import { loadCorpus } from '../corpus/load.js';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import type { Engine } from '../model/types.js';
import { normalizeRows, purityAtK, SENTENCE_POOLINGS, sentenceVectors, topKCosine, type SentencePooling } from '../probes/sentence-vectors.js';
import { buildOrLoadIndex, sentenceText } from '../probes/similarity-index.js';
import { lineOverLayers } from '../results/figures.js';
import { formatTable } from '../results/format.js';
import { createResultSet } from '../results/resultset.js';
import { InputError } from '../util/errors.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import { mulberry32, shuffled } from '../util/random.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addRunOptions, isOffline, positiveInt, withExample, type CommonOptions } from './common.js';
import { addDataOptions, loadOptionsFrom, type DataCliOptions } from './data-options.js';

/**
 * `bert-probe similar`: sentence vectors as bert-as-service builds them (src/probes/
 * sentence-vectors.ts), a corpus indexed once (cached), nearest neighbours of queries by
 * cosine, and label purity@k of held-out corpus sentences per layer, so a user sees which layer
 * gives the best sentence vectors for their labels.
 */
interface SimilarOptions extends CommonOptions, DataCliOptions {
  data: string;
  queries?: string;
  topK: number;
  layers: string;
  pooling: SentencePooling;
  excludeSpecial?: boolean;
  limit?: number;
  evalQueries: number;
}

export function register(program: Command): void {
  const cmd = program
    .command('similar')
    .description('nearest corpus sentences by cosine of bert-as-service sentence vectors (masked mean of a layer, default the second-to-last), and label purity@k per layer')
    .argument('[query...]', 'query sentences')
    .option('-q, --queries <file>', 'query sentences, one per line')
    .option('-k, --top-k <k>', 'neighbours per query (and k of purity@k)', positiveInt('--top-k'), 10)
    .option('-l, --layers <spec>', 'layers: -2 = second-to-last encoder layer (bert-as-service default), all, 4,8,12', '-2')
    .addOption(new Option('--pooling <kind>', 'mean (REDUCE_MEAN), max, mean-max (concatenated), cls').choices([...SENTENCE_POOLINGS]).default('mean'))
    .option('--exclude-special', 'leave [CLS]/[SEP] out of pooling and attention (bert-as-service -mask_cls_sep)')
    .option('--limit <n>', 'index only the first N sentences of the corpus', positiveInt('--limit'))
    .option('--eval-queries <n>', 'held-out corpus sentences (seeded sample) scored by label purity@k', positiveInt('--eval-queries'), 200);
  addDataOptions(cmd, { defaultData: 'polarity' });
  addModelOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe similar --data polarity "a gripping, beautifully acted film" "dull and far too long"');
  cmd.action(action(async (ui: Ui, queries: string[], opts: SimilarOptions) => runSimilar(ui, queries, opts)));
}

function readQueries(args: string[], file?: string): { text: string; where: string }[] {
  const out = args.map((text, i) => ({ text, where: `argument ${i + 1}` }));
  if (file !== undefined) {
    splitLines(decodeUtf8(readBytes(file), file)).forEach((line, i) => {
      if (line.trim()) out.push({ text: line.trim(), where: `${file}:${i + 1}` });
    });
  }
  return out;
}

async function runSimilar(ui: Ui, queryArgs: string[], opts: SimilarOptions): Promise<void> {
  const queries = readQueries(queryArgs, opts.queries);
  const offline = isOffline(opts);
  const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: opts.seed, ui });
  const layers = parseLayerSpec(opts.layers, model.config.numHiddenLayers);
  let corpus = await loadCorpus(opts.data, loadOptionsFrom(opts, ui, offline));
  if (opts.limit !== undefined && opts.limit < corpus.sentences.length) corpus = { ...corpus, id: `${corpus.id}[:${opts.limit}]`, sentences: corpus.sentences.slice(0, opts.limit) };
  if (corpus.sentences.length < 2) throw new InputError('corpus too small to search', { file: corpus.files[0], expected: 'at least 2 sentences', found: String(corpus.sentences.length), fix: 'use a larger corpus or drop --limit' });
  const labels = corpus.sentences.map((s) => s.label ?? null);
  const labelled = labels.every((l) => l !== null);

  const rs = await createResultSet({ command: 'similar', modelId: model.source.id, dataId: opts.data, out: opts.out, force: opts.force, seed: opts.seed, ui, json: opts.json });
  rs.setManifest({
    model: { id: model.source.id, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    data: { id: corpus.id, sha256: corpus.sha256, sentences: corpus.sentences.length, labelled },
    sentenceVectors: {
      definition: 'bert-as-service (REFERENCES.md §5): masked mean Σ h·m / (Σ m + 1e-10) of the layer\'s word pieces',
      layers: layers.map(layerName),
      pooling: opts.pooling,
      specialTokens: opts.excludeSpecial ? 'excluded from pooling and attention (-mask_cls_sep)' : 'included (bert-as-service default)',
      truncation: `at the model's ${model.config.maxPositionEmbeddings} positions (bert-as-service truncates at max_seq_len 25)`,
      similarity: 'cosine',
      purity: `label purity@${opts.topK}: mean over ${opts.evalQueries} seeded held-out corpus sentences of the fraction of their k nearest other sentences with the same label`,
    },
  });
  let engine: Engine | undefined;
  const getEngine = async () => (engine ??= await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui }));
  try {
    const bar = ui.bar('indexing', corpus.sentences.length, '{bar} {value}/{total} sentences | ETA {eta_formatted}');
    const index = await rs.stage('index', () => buildOrLoadIndex(model, corpus, { layers, pooling: opts.pooling, excludeSpecial: Boolean(opts.excludeSpecial), batchSize: opts.batchSize, engine: getEngine, onBatch: (n) => bar.increment(n) }));
    bar.stop();
    ui.info(index.reused ? `index reused: ${index.file}` : `index written: ${index.file}`);
    rs.setManifest({ index: { file: index.file, reused: index.reused } });
    const D = index.dim;

    // Queries from the user.
    const rows: Record<string, unknown>[] = [];
    const records: Record<string, unknown>[] = [];
    if (queries.length) {
      const qv = await sentenceVectors(await getEngine(), model, queries.map((q) => q.text), { layers, pooling: opts.pooling, excludeSpecial: Boolean(opts.excludeSpecial), batchSize: opts.batchSize });
      for (const l of layers) {
        const m = normalizeRows(qv.get(l)!, D);
        queries.forEach((q, qi) => {
          const t0 = performance.now();
          const nn = topKCosine(index.vectors.get(l)!, D, m.subarray(qi * D, (qi + 1) * D), opts.topK);
          const ms = performance.now() - t0;
          nn.forEach((n, rank) => {
            const s = corpus.sentences[n.row]!;
            rows.push({ model: model.source.id, layer: layerName(l), query: q.text, rank: rank + 1, id: s.id, text: sentenceText(s), label: labels[n.row], score: n.score });
          });
          records.push({ query: q.text, where: q.where, layer: layerName(l), neighbours: nn.map((n) => ({ id: corpus.sentences[n.row]!.id, label: labels[n.row], score: n.score })), milliseconds: Number(ms.toFixed(3)) });
        });
      }
    }

    // Label purity@k of held-out corpus sentences, per layer.
    const purity: Record<string, unknown>[] = [];
    if (labelled) {
      const held = shuffled(corpus.sentences.map((_, i) => i), mulberry32(opts.seed)).slice(0, Math.min(opts.evalQueries, corpus.sentences.length));
      for (const l of layers) {
        purity.push({ model: model.source.id, layer: layerName(l), pooling: opts.pooling, k: opts.topK, queries: held.length, purity: purityAtK(index.vectors.get(l)!, D, labels as string[], held, opts.topK) });
      }
      rs.writeTable('purity.csv', purity as never, ['model', 'layer', 'pooling', 'k', 'queries', 'purity']);
      const counts = new Map<string, number>();
      for (const lab of labels) counts.set(lab!, (counts.get(lab!) ?? 0) + 1);
      // Chance: the expected purity of k random neighbours, Σ_c p_c², for reference.
      const chance = [...counts.values()].reduce((a, c) => a + (c / labels.length) ** 2, 0);
      rs.setManifest({ purityChance: chance });
      if (layers.length > 1) {
        rs.addFigure('purity-by-layer', lineOverLayers({ rows: [...purity, ...purity.map((p) => ({ ...p, model: 'chance (Σ p_c²)', purity: chance }))], y: 'purity', series: 'model', title: `Label purity@${opts.topK} of held-out sentences by layer`, yTitle: `purity@${opts.topK}`, yDomain: [0, 1] }), `Fraction of the ${opts.topK} nearest sentences sharing the query's label, mean over ${purity[0]!.queries} held-out sentences; chance = Σ p_c² = ${chance.toFixed(3)}.`);
      }
    } else ui.warn(`${corpus.id}: not every sentence has a label; purity@k is not computed`);

    rs.writeRows(rows as never, ['model', 'layer', 'query', 'rank', 'id', 'text', 'label', 'score'], {
      model: 'model id', layer: 'layer the sentence vectors come from', query: 'the query sentence', rank: '1 = most similar', id: 'corpus sentence id', text: 'the corpus sentence', label: 'its label (if the corpus has labels)', score: 'cosine similarity',
    });
    rs.writePredictions(records);
    if (!opts.json && !opts.quiet && rows.length) process.stdout.write(formatTable(['layer', 'query', 'rank', 'label', 'score', 'text'], rows.map((r) => ({ ...r, query: String(r.query).slice(0, 40), text: String(r.text).slice(0, 70) })), 200) + '\n');
    const best = purity.length ? purity.reduce((a, b) => ((b.purity as number) > (a.purity as number) ? b : a)) : null;
    await rs.finish({
      command: 'similar', model: model.source.id, random_init: model.source.randomInit, data: opts.data, sentences: corpus.sentences.length, layers: layers.map(layerName), pooling: opts.pooling,
      queries: queries.length, purity: Object.fromEntries(purity.map((p) => [p.layer, p.purity])), best_layer: best ? { layer: best.layer, purity: best.purity } : null,
    }, purity.length ? { columns: ['layer', 'k', 'queries', 'purity'], rows: purity } : undefined);
  } finally {
    if (engine) await engine.dispose();
  }
}
