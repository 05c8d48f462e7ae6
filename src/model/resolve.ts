import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { InputError } from '../util/errors.js';
import { hfHubCacheDir } from '../util/paths.js';
import type { Ui } from '../util/ui.js';
import { cachedSnapshot, downloadModel, HUB_ID, snapshotComplete, withRepoLock } from './hub.js';

/** The model every command uses when --model is not given. */
export const DEFAULT_MODEL = 'bert-base-uncased';

/** --offline, or HF_HUB_OFFLINE=1 / BERT_PROBE_OFFLINE=1 in the environment: never touch the network. */
export function isOffline(opts: { offline?: boolean }): boolean {
  return Boolean(opts.offline) || process.env.HF_HUB_OFFLINE === '1' || process.env.BERT_PROBE_OFFLINE === '1';
}

/**
 * Where `--model` points, in order: a local folder; the Hugging Face cache (so checkpoints
 * Python `transformers` fetched are reused); a download from the Hub into that cache (not with
 * --offline).
 */
export interface ResolvedModel {
  dir: string;
  /** Hub id, or the folder as given. */
  id: string;
  revision?: string;
  from: 'local' | 'cache' | 'hub';
}

function looksLikePath(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('~') || spec.includes('\\') || spec.split('/').length > 2;
}

/** `configOnly`: config.json and tokenizer suffice (the random-init control's shape); weights are not fetched. */
export async function resolveModel(spec: string, opts: { revision?: string; offline?: boolean; ui?: Ui; configOnly?: boolean } = {}): Promise<ResolvedModel> {
  const expanded = spec.startsWith('~/') ? homedir() + spec.slice(1) : spec;
  if (existsSync(expanded) && statSync(expanded).isDirectory()) {
    return { dir: resolvePath(expanded), id: spec, from: 'local' };
  }
  if (looksLikePath(spec) || !HUB_ID.test(spec)) {
    throw new InputError(`model folder '${spec}' does not exist`, {
      file: spec,
      expected: 'a checkpoint folder (config.json, vocab.txt or tokenizer.json, weights) or a Hub id like bert-base-uncased',
      found: existsSync(expanded) ? 'a file, not a folder' : 'no such folder',
      fix: 'check the path, or pass a Hugging Face model id',
    });
  }
  const revision = opts.revision ?? 'main';
  const snap = cachedSnapshot(spec, revision);
  if (snap && (snapshotComplete(snap) || (opts.configOnly && existsSync(join(snap, 'config.json'))))) {
    opts.ui?.debug(`model ${spec}@${revision} from the HF cache: ${snap}`);
    return { dir: snap, id: spec, revision, from: 'cache' };
  }
  if (opts.offline || process.env.HF_HUB_OFFLINE === '1') {
    throw new InputError(`model '${spec}' (revision ${revision}) is not in the Hugging Face cache and --offline forbids downloading it`, {
      file: hfHubCacheDir(),
      expected: `a complete snapshot under models--${spec.split('/').join('--')}/snapshots/`,
      found: snap ? `an incomplete snapshot ${snap}` : 'no cached copy',
      fix: `run once without --offline to download it (or \`huggingface-cli download ${spec}\`), point HF_HOME at a cache that has it, or pass a local folder with --model`,
    });
  }
  return withRepoLock(spec, hfHubCacheDir(), async () => {
    // Another process may have finished the download while we waited for the lock.
    const now = cachedSnapshot(spec, revision);
    if (now && snapshotComplete(now)) return { dir: now, id: spec, revision, from: 'cache' as const };
    const dir = await downloadModel(spec, { revision, ui: opts.ui, withoutWeights: opts.configOnly });
    return { dir, id: spec, revision, from: 'hub' as const };
  }, opts.ui);
}
