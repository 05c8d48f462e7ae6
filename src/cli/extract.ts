import { Option, InvalidArgumentError, type Command } from 'commander';
import { loadCorpus } from '../corpus/load.js';
import { createEngine } from '../model/engine.js';
import type { Engine } from '../model/types.js';
import { loadModel, peekConfig } from '../model/load.js';
import { extractWithReport } from '../extract/pipeline.js';
import { POOLINGS, type Pooling } from '../extract/align.js';
import { InputError } from '../util/errors.js';
import { layerName, parseLayerSpec } from '../util/names.js';
import { action, addModelOptions, addOutputOptions, isOffline, positiveInt, withExample, type ModelOptions, type OutputOptions } from './common.js';

/**
 * `bert-probe extract`: run a corpus through a model once and keep the word-level activations
 * in an on-disk store (src/extract/store.ts) that every probe reads. Prints the store folder on
 * stdout (or, with --json, the extraction summary).
 */
interface ExtractCliOptions extends ModelOptions, OutputOptions {
  data: string;
  split?: string;
  format?: string;
  layers: string;
  attention?: string | true;
  rawAttention?: boolean;
  pieces?: boolean;
  pooling: Pooling;
  dtype: 'float32' | 'float16';
  out?: string;
  force?: boolean;
  shard?: { index: number; count: number };
  shardSize: number;
}

export function parseShard(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = Number(m?.[1]), count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`--shard must be K/N with 1 <= K <= N, e.g. 2/4 (got '${value}')`);
  return { index, count };
}

/** Layers SPEC, plus `none` (only attention wanted). */
export function parseLayersOrNone(spec: string, numLayers: number): number[] {
  return spec.trim() === 'none' ? [] : parseLayerSpec(spec, numLayers);
}

export function register(program: Command): void {
  const cmd = program
    .command('extract')
    .description('run a corpus through a model and store word-level activations on disk (resumable; probes reuse them)')
    .requiredOption('-d, --data <name|path>', 'dataset name (NAME or NAME:SPLIT) or corpus file')
    .option('--split <split>', 'split of a named dataset')
    .option('--format <format>', 'corpus file format (default: from the file name)')
    .option('-l, --layers <spec>', 'hidden states to keep: all, 0-12, 4,8,12, -1 (last), or none', 'all')
    .option('--attention [spec]', 'also keep word-level attention (Clark et al. 2019: sum over attended pieces, mean over attending pieces; [CLS]/[SEP] kept) of these layers 1..L (default: all)')
    .option('--raw-attention', 'keep --attention at word-piece level instead of word level')
    .option('--pieces', 'keep the hidden states of every word piece incl. [CLS]/[SEP] with each word\'s piece span (span probes; word-level reads pool them on read)')
    .addOption(new Option('--pooling <how>', 'word vector from its pieces').choices([...POOLINGS]).default('mean'))
    .addOption(new Option('--dtype <dtype>', 'stored value type').choices(['float32', 'float16']).default('float32'))
    .option('-o, --out <dir>', 'store folder (default: the cache, keyed by model, corpus, pooling and dtype)')
    .option('--force', 'replace a store in --out that was built for another model, corpus or pooling')
    .option('--shard <K/N>', 'extract only the K-th of N contiguous parts of the corpus (for N parallel jobs; probes read the N stores as one)', parseShard)
    .option('--shard-size <n>', 'sentences per store file (the unit of resuming)', positiveInt('--shard-size'), 256);
  addModelOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe extract --model bert-base-uncased --data ewt:dev --layers all --attention');
  cmd.action(action(async (ui, opts: ExtractCliOptions) => {
    const offline = isOffline(opts);
    // Cheap checks before the model builds (issue 15): --layers against the config, the data selection.
    const peeked = peekConfig(opts.model, opts.revision);
    if (peeked) parseLayersOrNone(opts.layers, peeked.numHiddenLayers);
    const corpus = await loadCorpus(opts.data, { split: opts.split, format: opts.format, offline, ui });
    const model = await loadModel(opts.model, { revision: opts.revision, offline, seed: opts.modelSeed, ui });
    if (model.source.randomInit) ui.info(`model ${model.source.id}: random-init control`);
    const L = model.config.numHiddenLayers;
    const layers = parseLayersOrNone(opts.layers, L);
    const attentionLayers = opts.attention === undefined ? [] : opts.attention === true ? [...Array(L).keys()].map((i) => i + 1) : parseLayerSpec(opts.attention, L);
    if (attentionLayers.includes(0)) {
      throw new InputError('--attention layer 0 does not exist', { expected: `attention layers 1..${L}`, found: String(opts.attention), fix: `e.g. --attention 1-${L}` });
    }
    if (opts.rawAttention && opts.attention === undefined) throw new InputError('--raw-attention needs --attention', { expected: '--attention [SPEC] --raw-attention', found: '--raw-attention alone', fix: 'add --attention' });
    if (layers.length === 0 && attentionLayers.length === 0) throw new InputError('nothing to extract', { expected: '--layers SPEC and/or --attention', found: '--layers none without --attention', fix: 'ask for some layers' });
    // made only if some shard is missing: a complete store costs no engine start
    let engine: Engine | undefined;
    const getEngine = async (): Promise<Engine> => (engine ??= await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui }));
    try {
      ui.info(`extracting ${layers.map(layerName).join(', ') || 'no hidden states'}${opts.pieces && layers.length ? ' at word-piece level' : ''}${attentionLayers.length ? ` + ${opts.rawAttention ? 'piece' : 'word'}-level attention of layers ${attentionLayers.join(',')}` : ''} for ${corpus.id} (${corpus.sentences.length} sentences)`);
      const { store, report } = await extractWithReport({
        model, engine: getEngine, corpus,
        request: { layers, attentionLayers, rawAttention: Boolean(opts.rawAttention), level: opts.pieces ? 'piece' : 'word' },
        pooling: opts.pooling, dtype: opts.dtype, precision: opts.precision, batchSize: opts.batchSize, storeDir: opts.out, ui, shard: opts.shard, force: opts.force, shardSize: opts.shardSize,
      });
      const used = engine as Engine | undefined;
      ui.info(
        `${report.computedSentences ? `ran ${report.computedSentences} sentences with ${used?.kind}/${used?.backend} (${report.tokens} tokens, ${Math.round(report.tokensPerSecond)} tokens/s)` : 'everything was already stored: no forward pass'}; ` +
          `store: ${store.numSentences} sentences, ${store.wordCounts.reduce((a, b) => a + b, 0)} words, ${report.windowed} windowed, attention skipped for ${report.attentionSkipped}`,
      );
      if (opts.json) {
        process.stdout.write(JSON.stringify({
          store: report.dir, model: { id: model.source.id, weightsSha256: model.source.weightsSha256, randomInit: model.source.randomInit },
          data: { id: corpus.id, sha256: corpus.sha256 }, engine: used?.kind ?? null, backend: used?.backend ?? null,
          layers: store.layers.map(layerName), pieceLayers: store.pieceLayers.map(layerName), attentionLayers: opts.rawAttention ? store.rawAttentionLayers : store.attentionLayers,
          pooling: opts.pooling, dtype: opts.dtype, precision: opts.precision, shard: opts.shard ?? null, ...report, dir: undefined,
        }, null, 2) + '\n');
      } else {
        process.stdout.write(report.dir + '\n');
      }
    } finally {
      await (engine as Engine | undefined)?.dispose();
    }
  }));
}
