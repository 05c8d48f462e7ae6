import { Option, type Command } from 'commander';
import { loadCorpus } from '../corpus/load.js';
import type { Corpus, Sentence } from '../corpus/types.js';
import type { Pooling } from '../extract/align.js';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import type { Engine, LoadedModel } from '../model/types.js';
import { documentOf, findOccurrences, layerGeometry, occurrenceVectors, SenseCentroids, senseKey, wsdScores, type Occurrence } from '../probes/senses.js';
import { lineOverLayers, scatter } from '../results/figures.js';
import { createResultSet, type ResultSet } from '../results/resultset.js';
import { InputError } from '../util/errors.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import { mulberry32, shuffled } from '../util/random.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addRunOptions, isOffline, positiveInt, withExample, type CommonOptions } from './common.js';
import { addDataOptions, loadOptionsFrom, type DataCliOptions } from './data-options.js';

/**
 * `bert-probe senses --word fair`: the geometry of one word's contextual vectors per layer
 * (PCA and UMAP maps coloured by gold sense, k-means purity and ARI), and `senses --wsd`:
 * nearest-centroid word-sense disambiguation over every SemCor lemma with a document-level
 * split (src/probes/senses.ts has the definitions and their sources).
 */
interface SensesOptions extends CommonOptions, DataCliOptions {
  data: string;
  word?: string;
  wsd?: boolean;
  layers: string;
  pooling: Pooling;
  k?: number;
  limit?: number;
  testFraction: number;
}

export function register(program: Command): void {
  const cmd = program
    .command('senses')
    .description("a word's contextual vectors per layer: PCA/UMAP maps coloured by sense, k-means purity and ARI against gold senses (Coenen et al. 2019); --wsd: nearest-centroid word-sense disambiguation")
    .option('-w, --word <word>', 'the word (SemCor: its lemma) whose occurrences are mapped')
    .option('--wsd', 'nearest-centroid WSD over all sense-tagged lemmas, document-level train/test split')
    .option('-l, --layers <spec>', 'layers: all, 0-12, 4,8,12, -1', 'all')
    .addOption(new Option('--pooling <how>', "an occurrence's vector: its first word piece (context atlas) or the mean of its pieces").choices(['first', 'mean']).default('first'))
    .option('--k <k>', 'k-means clusters (default: the number of gold senses, or 2 unlabelled)', positiveInt('--k'))
    .option('--limit <n>', 'read only the first N sentences of the corpus', positiveInt('--limit'))
    .option('--test-fraction <f>', '--wsd: fraction of documents held out for testing', (v: string) => {
      const f = Number(v);
      if (!(f > 0 && f < 1)) throw new InputError('bad --test-fraction', { expected: 'a number between 0 and 1', found: v, fix: 'e.g. --test-fraction 0.2' });
      return f;
    }, 0.2);
  addDataOptions(cmd, { defaultData: 'semcor' });
  addModelOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe senses --word fair --data semcor --layers all');
  cmd.action(action(async (ui: Ui, opts: SensesOptions) => runSenses(ui, opts)));
}

async function runSenses(ui: Ui, opts: SensesOptions): Promise<void> {
  if (!opts.word === !opts.wsd) {
    throw new InputError('say what to do', { expected: '--word WORD (one word\'s geometry) or --wsd (disambiguation over all lemmas)', found: opts.word ? 'both' : 'neither', fix: 'bert-probe senses --word fair, or bert-probe senses --wsd' });
  }
  const offline = isOffline(opts);
  const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: opts.seed, ui });
  const layers = parseLayerSpec(opts.layers, model.config.numHiddenLayers);
  let corpus = await loadCorpus(opts.data, loadOptionsFrom(opts, ui, offline));
  if (opts.limit !== undefined && opts.limit < corpus.sentences.length) corpus = { ...corpus, id: `${corpus.id}[:${opts.limit}]`, sentences: corpus.sentences.slice(0, opts.limit) };
  const rs = await createResultSet({ command: 'senses', modelId: model.source.id, dataId: opts.wsd ? `${opts.data}-wsd` : `${opts.data}-${opts.word}`, out: opts.out, force: opts.force, seed: opts.seed, ui, json: opts.json });
  rs.setManifest({
    model: { id: model.source.id, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
    data: { id: corpus.id, sha256: corpus.sha256, files: corpus.files.length, sentences: corpus.sentences.length },
    layers: layers.map(layerName),
    occurrenceVector: opts.pooling === 'first' ? 'first word piece of the word (PAIR context-atlas preprocess.py)' : 'mean of the word\'s pieces',
  });
  let engine: Engine | undefined;
  try {
    engine = await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
    rs.setManifest({ engine: engine.kind, backend: engine.backend, precision: opts.precision });
    if (opts.wsd) await runWsd(ui, rs, engine, model, corpus, layers, opts);
    else await runWord(ui, rs, engine, model, corpus, layers, opts);
  } finally {
    if (engine) await engine.dispose();
  }
}

const WORD_COLUMNS = ['model', 'layer', 'occurrences', 'labelled', 'senses', 'k', 'purity', 'ari', 'pca_var1', 'pca_var2'];

async function runWord(ui: Ui, rs: ResultSet, engine: Engine, model: LoadedModel, corpus: Corpus, layers: number[], opts: SensesOptions): Promise<void> {
  const word = opts.word!;
  const occ = findOccurrences(corpus.sentences, word);
  if (occ.length < 2) {
    throw new InputError(`"${word}" occurs ${occ.length === 0 ? 'nowhere' : 'once'} in ${corpus.id}`, { file: corpus.files[0], expected: 'at least 2 sentences containing the word', found: `${occ.length}`, fix: 'pick a more frequent word, or a larger corpus (drop --limit)' });
  }
  const senses = occ.map((o) => o.sense);
  const distinct = [...new Set(senses.filter((s): s is string => s !== null))];
  const k = opts.k ?? Math.max(2, distinct.length);
  ui.info(`${word}: ${occ.length} occurrences, ${distinct.length} gold senses${distinct.length ? ` (${distinct.join(', ')})` : ''}`);
  rs.setManifest({ word, occurrences: occ.length, goldSenses: distinct, k, kmeans: 'ml-kmeans, k-means++ initialisation, seeded', umap: 'umap-js defaults (nNeighbors 15 capped at n−1, minDist 0.1), seeded, fitted per layer', pca: 'ml-pca, centred, not scaled' });
  const bar = ui.bar('encoding', new Set(occ.map((o) => o.sentence)).size, '{bar} {value}/{total} sentences');
  const vectors = await rs.stage('encode', () => occurrenceVectors(engine, model, corpus.sentences, occ, { layers, pooling: opts.pooling, batchSize: opts.batchSize, onSentence: () => bar.increment() }));
  bar.stop();
  const H = model.config.hiddenSize;
  const rows: Record<string, unknown>[] = [];
  const records: Record<string, unknown>[] = [];
  for (const l of layers) {
    const g = layerGeometry(vectors.get(l)!, occ.length, H, senses, { k, seed: opts.seed });
    rows.push({ model: model.source.id, layer: layerName(l), occurrences: occ.length, labelled: senses.filter((s) => s !== null).length, senses: distinct.length, k: g.k, purity: g.purity, ari: g.ari, pca_var1: g.pcaExplained[0], pca_var2: g.pcaExplained[1] });
    occ.forEach((o, i) => {
      const s = corpus.sentences[o.sentence]!;
      records.push({ model: model.source.id, layer: layerName(l), id: s.id, word: o.word, text: s.words.join(' '), sense: o.sense, cluster: g.clusters[i], pca: g.pca[i], umap: g.umap ? g.umap[i] : null });
    });
    const points = (xy: number[][]) => occ.map((o, i) => ({ x: xy[i]![0]!, y: xy[i]![1]!, group: o.sense ?? 'unlabelled', label: shortContext(corpus.sentences[o.sentence]!, o.word) }));
    if (g.umap) rs.addFigure(`umap-${layerName(l)}`, scatter({ points: points(g.umap), title: `"${word}" at ${layerName(l)}: UMAP`, xTitle: 'UMAP 1', yTitle: 'UMAP 2', showLabels: false }), `UMAP of the ${occ.length} occurrences of "${word}" at ${layerName(l)}, coloured by gold sense; purity ${fmt(g.purity)}, ARI ${fmt(g.ari)}.`);
    rs.addFigure(`pca-${layerName(l)}`, scatter({ points: points(g.pca), title: `"${word}" at ${layerName(l)}: PCA`, xTitle: `PC1 (${(100 * g.pcaExplained[0]).toFixed(1)}%)`, yTitle: `PC2 (${(100 * g.pcaExplained[1]).toFixed(1)}%)`, showLabels: false }), `First two principal components of the occurrences of "${word}" at ${layerName(l)}.`);
  }
  rs.writeRows(rows as never, WORD_COLUMNS, {
    model: 'model id', layer: 'hidden state', occurrences: 'sentences with the word (first occurrence each)', labelled: 'occurrences with a gold sense', senses: 'distinct gold senses', k: 'k-means clusters',
    purity: 'k-means purity against gold senses (labelled occurrences)', ari: 'adjusted Rand index of k-means against gold senses', pca_var1: 'variance explained by PC1', pca_var2: 'variance explained by PC2',
  });
  rs.writePredictions(records);
  if (layers.length > 1 && distinct.length) rs.addFigure('clustering-by-layer', lineOverLayers({ rows: rows.flatMap((r) => [{ layer: r.layer, metric: 'purity', value: r.purity }, { layer: r.layer, metric: 'ARI', value: r.ari }]), y: 'value', series: 'metric', title: `k-means (k = ${k}) against gold senses of "${word}"`, yTitle: 'score' }), 'Purity and adjusted Rand index of k-means clusters against the gold senses, by layer.');
  const best = distinct.length ? rows.reduce((a, b) => ((b.ari as number) > (a.ari as number) ? b : a)) : null;
  await rs.finish({ command: 'senses', model: model.source.id, random_init: model.source.randomInit, word, occurrences: occ.length, senses: distinct, k, best_layer: best ? { layer: best.layer, ari: best.ari, purity: best.purity } : null }, { columns: ['layer', 'occurrences', 'k', 'purity', 'ari'], rows });
}

function shortContext(s: Sentence, i: number): string {
  return s.words.slice(Math.max(0, i - 4), i + 5).join(' ');
}

const fmt = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(3));

const WSD_COLUMNS = ['model', 'layer', 'f1', 'precision', 'recall', 'attempted', 'total', 'mfs_f1', 'train_documents', 'test_documents'];

async function runWsd(ui: Ui, rs: ResultSet, engine: Engine, model: LoadedModel, corpus: Corpus, layers: number[], opts: SensesOptions): Promise<void> {
  const docs = [...new Set(corpus.sentences.map(documentOf))];
  if (docs.length < 2) throw new InputError(`${corpus.id} has ${docs.length} document`, { file: corpus.files[0], expected: 'at least 2 documents for a document-level split', found: String(docs.length), fix: 'use more of the corpus (raise or drop --limit)' });
  const nTest = Math.max(1, Math.round(docs.length * opts.testFraction));
  const testDocs = new Set(shuffled(docs, mulberry32(opts.seed)).slice(0, nTest));
  const tagged = (s: Sentence): Occurrence[] => (s.senses ?? []).flatMap((ws, i) => (ws ? [{ sentence: -1, word: i, sense: senseKey(ws) }] : []));
  const split = (test: boolean) => {
    const sentences = corpus.sentences.filter((s) => testDocs.has(documentOf(s)) === test);
    const occ = sentences.flatMap((s, si) => tagged(s).map((o) => ({ ...o, sentence: si })));
    return { sentences, occ };
  };
  const train = split(false);
  const test = split(true);
  rs.setManifest({
    wsd: {
      method: 'nearest sense centroid by cosine (Coenen et al. 2019 §4.2; their layer and distance are unpublished)',
      split: `document level, seeded: ${docs.length - nTest} training and ${nTest} test documents (--test-fraction ${opts.testFraction})`,
      scoring: 'P = correct/attempted, R = correct/all, F1 = 2PR/(P+R); test lemmas unseen in training are not attempted (Raganato et al. 2017 scorer)',
      baseline: 'most frequent training sense of the lemma (same attempted set)',
      senseKeys: 'SemCor lemma%lexsn (WordNet 3.0 sense keys)',
      trainOccurrences: train.occ.length,
      testOccurrences: test.occ.length,
    },
  });
  ui.info(`WSD: ${train.occ.length} training occurrences in ${docs.length - nTest} documents, ${test.occ.length} test occurrences in ${nTest}`);
  const H = model.config.hiddenSize;
  const lemmaOf = (key: string) => key.split(/[%#]/)[0]!;
  const centroids = new Map(layers.map((l) => [l, new SenseCentroids(H)] as const));
  // Encode in chunks so memory stays one chunk's vectors plus the centroids.
  const CHUNK = 2000;
  const encode = async (part: typeof train, label: string, use: (occ: Occurrence[], vecs: Map<number, Float32Array>) => void) => {
    const bar = ui.bar(label, part.occ.length, '{bar} {value}/{total} occurrences | ETA {eta_formatted}');
    for (let c = 0; c < part.occ.length; c += CHUNK) {
      const occ = part.occ.slice(c, c + CHUNK);
      use(occ, await occurrenceVectors(engine, model, part.sentences, occ, { layers, pooling: opts.pooling, batchSize: opts.batchSize }));
      bar.increment(occ.length);
    }
    bar.stop();
  };
  await rs.stage('centroids', () => encode(train, 'train', (occ, vecs) => occ.forEach((o, k) => layers.forEach((l) => centroids.get(l)!.add(lemmaOf(o.sense!), o.sense!, vecs.get(l)!.subarray(k * H, (k + 1) * H))))));
  const predictions = new Map(layers.map((l) => [l, [] as { gold: string; predicted: string | null }[]] as const));
  const records: Record<string, unknown>[] = [];
  await rs.stage('predict', () => encode(test, 'test', (occ, vecs) => occ.forEach((o, k) => {
    const lemma = lemmaOf(o.sense!);
    const predicted: Record<string, string | null> = {};
    for (const l of layers) {
      const p = centroids.get(l)!.predict(lemma, vecs.get(l)!.subarray(k * H, (k + 1) * H));
      predictions.get(l)!.push({ gold: o.sense!, predicted: p });
      predicted[layerName(l)] = p;
    }
    records.push({ id: test.sentences[o.sentence]!.id, word: o.word, lemma, gold: o.sense, mfs: centroids.get(layers[0]!)!.mostFrequent(lemma), predicted });
  })));
  const mfs = wsdScores(records.map((r) => ({ gold: r.gold as string, predicted: r.mfs as string | null })));
  const rows = layers.map((l) => {
    const s = wsdScores(predictions.get(l)!);
    return { model: model.source.id, layer: layerName(l), f1: s.f1, precision: s.precision, recall: s.recall, attempted: s.attempted, total: s.total, mfs_f1: mfs.f1, train_documents: docs.length - nTest, test_documents: nTest };
  });
  rs.writeRows(rows as never, WSD_COLUMNS, {
    model: 'model id', layer: 'hidden state', f1: 'WSD F1 of nearest-centroid prediction (test documents)', precision: 'correct / attempted', recall: 'correct / all test occurrences', attempted: 'test occurrences whose lemma was seen in training',
    total: 'sense-tagged test occurrences', mfs_f1: 'F1 of the most-frequent-training-sense baseline', train_documents: 'documents whose occurrences build the centroids', test_documents: 'held-out documents',
  });
  rs.writePredictions(records);
  if (layers.length > 1) rs.addFigure('wsd-f1-by-layer', lineOverLayers({ rows: [...rows.map((r) => ({ ...r, series: 'nearest centroid' })), ...rows.map((r) => ({ ...r, f1: r.mfs_f1, series: 'most frequent sense' }))], y: 'f1', series: 'series', title: 'WSD F1 by layer (held-out documents)', yTitle: 'F1', yDomain: [0, 1] }), 'Nearest-centroid WSD F1 per layer against the most-frequent-sense baseline.');
  const best = rows.reduce((a, b) => ((b.f1 ?? -1) > (a.f1 ?? -1) ? b : a));
  await rs.finish({ command: 'senses', mode: 'wsd', model: model.source.id, random_init: model.source.randomInit, best_layer: { layer: best.layer, f1: best.f1 }, mfs_f1: mfs.f1, test_occurrences: test.occ.length }, { columns: ['layer', 'f1', 'precision', 'recall', 'mfs_f1'], rows });
}
