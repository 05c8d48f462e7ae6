import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import type { BertConfig } from './types.js';

/**
 * config.json of a BERT-family checkpoint → BertConfig, validated. Field names and defaults
 * follow Hugging Face `transformers.BertConfig` (configuration_bert.py); anything the engines
 * cannot run (non-absolute position embeddings, an unknown activation, hidden size not
 * divisible by the head count) is a clear InputError naming the field.
 */

/** bert-base-uncased's config (huggingface.co/bert-base-uncased/config.json). */
export const BERT_BASE_UNCASED_CONFIG: BertConfig = Object.freeze({
  modelType: 'bert',
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  padTokenId: 0,
  positionEmbeddingType: 'absolute',
  architectures: ['BertForMaskedLM'],
}) as BertConfig;

/** Model types whose checkpoints use BertModel's layout and forward pass. */
const BERT_LIKE = new Set(['bert']);

/** Activations that are exact erf-GELU (HF activations.py ACT2FN: "gelu" and "gelu_python" are the erf form; "gelu_new" is the tanh approximation). */
const GELU_NAMES = new Set(['gelu', 'gelu_python']);

/** Line (1-based) of the first occurrence of `"key"` in the JSON text, for error locations. */
function lineOf(text: string | undefined, key: string): number | undefined {
  if (!text) return undefined;
  const i = text.indexOf(`"${key}"`);
  if (i < 0) return undefined;
  return text.slice(0, i).split('\n').length;
}

/**
 * Validate a parsed config.json. `file` names the source for errors; `text` (the raw JSON) lets
 * errors point at the line.
 */
export function parseConfig(json: unknown, file: string, text?: string): BertConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new InputError('config.json is not a JSON object', {
      file,
      expected: 'a JSON object like {"model_type": "bert", "hidden_size": 768, ...}',
      found: Array.isArray(json) ? 'an array' : typeof json,
      fix: 'point --model at a Hugging Face BERT checkpoint folder with a valid config.json',
    });
  }
  const raw = json as Record<string, unknown>;
  const fail = (key: string, expected: string, fix: string): never => {
    throw new InputError(`config field '${key}' is invalid`, {
      file,
      line: lineOf(text, key),
      expected,
      found: key in raw ? JSON.stringify(raw[key]) : 'missing',
      fix,
    });
  };
  const int = (key: string, def?: number, min = 1): number => {
    const v = raw[key];
    if (v === undefined && def !== undefined) return def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      return fail(key, `an integer >= ${min}`, `set "${key}" in config.json`);
    }
    return v;
  };

  const modelType = raw.model_type === undefined ? 'bert' : raw.model_type;
  if (typeof modelType !== 'string' || !BERT_LIKE.has(modelType)) {
    fail('model_type', `one of ${[...BERT_LIKE].map((s) => `"${s}"`).join(', ')}`, 'bert-probe runs BERT-architecture checkpoints (model_type "bert")');
  }
  const hiddenSize = int('hidden_size');
  const numAttentionHeads = int('num_attention_heads');
  if (hiddenSize % numAttentionHeads !== 0) {
    throw new InputError('hidden_size is not divisible by num_attention_heads', {
      file,
      line: lineOf(text, 'hidden_size'),
      expected: `hidden_size a multiple of num_attention_heads (${numAttentionHeads})`,
      found: `hidden_size ${hiddenSize}`,
      fix: 'fix config.json: every head gets hidden_size / num_attention_heads dimensions',
    });
  }
  const act = raw.hidden_act ?? 'gelu';
  if (typeof act !== 'string' || !GELU_NAMES.has(act)) {
    fail('hidden_act', '"gelu" (exact erf GELU, as BERT uses)', 'only BERT\'s erf GELU is implemented; use a checkpoint with "hidden_act": "gelu"');
  }
  const pet = raw.position_embedding_type ?? 'absolute';
  if (pet !== 'absolute') {
    fail('position_embedding_type', '"absolute"', 'relative position embeddings are not supported; use a checkpoint with absolute positions');
  }
  const eps = raw.layer_norm_eps ?? 1e-12;
  if (typeof eps !== 'number' || !(eps > 0) || eps > 1e-2) {
    fail('layer_norm_eps', 'a small positive number such as 1e-12', 'set "layer_norm_eps" in config.json');
  }
  const archs = raw.architectures ?? [];
  if (!Array.isArray(archs) || archs.some((a) => typeof a !== 'string')) {
    fail('architectures', 'a list of class names such as ["BertForMaskedLM"]', 'fix or remove "architectures" in config.json');
  }
  const vocabSize = int('vocab_size');
  const config: BertConfig = {
    modelType: modelType as string,
    vocabSize,
    hiddenSize,
    numHiddenLayers: int('num_hidden_layers'),
    numAttentionHeads,
    intermediateSize: int('intermediate_size'),
    hiddenAct: 'gelu',
    maxPositionEmbeddings: int('max_position_embeddings', 512),
    typeVocabSize: int('type_vocab_size', 2),
    layerNormEps: eps as number,
    padTokenId: int('pad_token_id', 0, 0),
    positionEmbeddingType: 'absolute',
    architectures: archs as string[],
  };
  if (config.padTokenId >= vocabSize) fail('pad_token_id', `an id below vocab_size (${vocabSize})`, 'set "pad_token_id" to the [PAD] id (0 for BERT)');
  return config;
}

/** Read and validate `<dir>/config.json` (or a config file path). */
export function readConfigFile(file: string): BertConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InputError(e.code === 'ENOENT' ? 'config.json is missing' : `cannot read config: ${e.message}`, {
      file,
      expected: 'a config.json describing the model (hidden_size, num_hidden_layers, ...)',
      found: e.code === 'ENOENT' ? 'no such file' : String(e.code ?? e.message),
      fix: 'point --model at a complete Hugging Face checkpoint folder (config.json, vocab.txt or tokenizer.json, weights)',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const pos = m ? Number(m[1]) : undefined;
    const before = pos !== undefined ? text.slice(0, pos) : '';
    throw new InputError('config.json is not valid JSON', {
      file,
      line: pos !== undefined ? before.split('\n').length : undefined,
      column: pos !== undefined ? pos - before.lastIndexOf('\n') : undefined,
      expected: 'valid JSON',
      found: (err as Error).message,
      fix: 'repair config.json or download the checkpoint again',
    });
  }
  return parseConfig(json, file, text);
}

/** Parameter count of a BertModel with this config (plus the MLM head when `withMlmHead`). */
export function parameterCount(c: BertConfig, withMlmHead = false): number {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const emb = (c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize) * H + 2 * H;
  const layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H;
  const pooler = H * H + H;
  // MLM head: transform dense + LayerNorm + output bias; the decoder is tied to the embeddings.
  const mlm = withMlmHead ? H * H + H + 2 * H + c.vocabSize : 0;
  return emb + c.numHiddenLayers * layer + pooler + mlm;
}
