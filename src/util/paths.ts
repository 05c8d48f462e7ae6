import { homedir } from 'node:os';
import { join } from 'node:path';

/** The tool's own cache (datasets, built ONNX graphs, activation stores). BERT_PROBE_CACHE overrides. */
export function cacheDir(...sub: string[]): string {
  const base =
    process.env.BERT_PROBE_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'bert-probe');
  return join(base, ...sub);
}

/** Hugging Face hub cache, as `huggingface_hub` resolves it: HF_HUB_CACHE, else HF_HOME/hub. */
export function hfHubCacheDir(): string {
  if (process.env.HF_HUB_CACHE) return process.env.HF_HUB_CACHE;
  const home = process.env.HF_HOME ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}
