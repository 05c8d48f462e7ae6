import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../util/errors.js';
import { readPytorchBin } from './pytorch.js';
import { readSafetensors, type LoadedTensor } from './safetensors.js';
import type { BertConfig, WeightMap } from './types.js';
import { canonicalize } from './weight-map.js';

/**
 * A checkpoint folder's weight files, as Hugging Face lays them out: `model.safetensors`, or
 * shards listed in `model.safetensors.index.json`, else `pytorch_model.bin` (or its sharded
 * index). Safetensors wins when both are present (it cannot carry code).
 */
export interface WeightFiles {
  format: 'safetensors' | 'pytorch';
  /** Absolute paths, sorted by file name (the order weightsSha256 hashes them in). */
  files: string[];
  /** For sharded checkpoints: tensor name → shard file. */
  shardOf?: Map<string, string>;
}

const WEIGHT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

function readIndex(dir: string, name: string): { files: string[]; shardOf: Map<string, string> } {
  const file = join(dir, name);
  let json: { weight_map?: Record<string, string> };
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as typeof json;
  } catch (err) {
    throw new InputError(`${name} is not valid JSON`, { file, expected: '{"weight_map": {tensor: shard file}}', found: (err as Error).message, fix: 'download the checkpoint again' });
  }
  if (!json.weight_map || typeof json.weight_map !== 'object') {
    throw new InputError(`${name} has no weight_map`, { file, expected: '{"weight_map": {tensor: shard file}}', found: Object.keys(json).join(', ') || 'an empty object', fix: 'download the checkpoint again' });
  }
  const shardOf = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(json.weight_map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.startsWith('.')) {
      throw new InputError(`${name} names an invalid shard for '${tensor}'`, { file, expected: 'a file name in the same folder', found: JSON.stringify(shard), fix: 'download the checkpoint again' });
    }
    const path = join(dir, shard);
    if (!existsSync(path)) throw new InputError(`shard ${shard} listed in ${name} is missing`, { file: path, expected: `the shard holding '${tensor}'`, found: 'no such file', fix: 'download the checkpoint again (all shards)' });
    shardOf.set(tensor, path);
  }
  return { files: [...new Set(shardOf.values())].sort(), shardOf };
}

export function findWeightFiles(dir: string): WeightFiles {
  if (existsSync(join(dir, 'model.safetensors'))) return { format: 'safetensors', files: [join(dir, 'model.safetensors')] };
  if (existsSync(join(dir, 'model.safetensors.index.json'))) return { format: 'safetensors', ...readIndex(dir, 'model.safetensors.index.json') };
  if (existsSync(join(dir, 'pytorch_model.bin'))) return { format: 'pytorch', files: [join(dir, 'pytorch_model.bin')] };
  if (existsSync(join(dir, 'pytorch_model.bin.index.json'))) return { format: 'pytorch', ...readIndex(dir, 'pytorch_model.bin.index.json') };
  throw new InputError('the checkpoint has no weights', {
    file: dir,
    expected: `one of ${WEIGHT_FILES.join(', ')}`,
    found: 'none of them',
    fix: 'download the full checkpoint (e.g. with huggingface-cli download MODEL), or use --model random for the random-init control',
  });
}

/** sha256 over the weight files' bytes, in name order, streamed (multi-GB files stay out of memory). */
export async function weightsSha256(files: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => basename(a).localeCompare(basename(b)))) {
    for await (const chunk of createReadStream(f, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}

export interface LoadedWeights {
  weights: WeightMap;
  hasMlmHead: boolean;
  format: 'safetensors' | 'pytorch';
  sourceDtype: 'F32' | 'F16' | 'BF16';
  files: string[];
}

/** Read, map to canonical names and check a checkpoint folder's weights against its config. */
export async function loadWeights(dir: string, config: BertConfig): Promise<LoadedWeights> {
  const wf = findWeightFiles(dir);
  const raw = new Map<string, LoadedTensor>();
  const fileOf = new Map<string, string>();
  for (const file of wf.files) {
    const tensors = wf.format === 'safetensors' ? readSafetensors(file).tensors : await readPytorchBin(file);
    for (const [name, t] of tensors) {
      raw.set(name, t);
      fileOf.set(name, file);
    }
  }
  if (wf.shardOf) {
    for (const [name, shard] of wf.shardOf) {
      if (!raw.has(name)) throw new InputError(`tensor '${name}' is listed in the index but not in its shard`, { file: shard, expected: `a tensor named '${name}'`, found: 'none', fix: 'download the checkpoint again' });
    }
  }
  const label = wf.files.length === 1 ? wf.files[0]! : dir;
  const { weights, hasMlmHead } = canonicalize(raw, config, label, (n) => fileOf.get(n) ?? label);
  const wordName = [...raw.keys()].find((n) => n.endsWith('embeddings.word_embeddings.weight'));
  const dtype = wordName ? raw.get(wordName)!.dtype : 'F32';
  const sourceDtype = dtype === 'F16' || dtype === 'BF16' ? dtype : 'F32';
  return { weights, hasMlmHead, format: wf.format, sourceDtype, files: wf.files };
}
