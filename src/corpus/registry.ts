import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../util/errors.js';

/**
 * The dataset registry: datasets/registry.json (names, pinned upstream URLs, sha256, sizes,
 * formats, splits, licences). Only metadata is committed; files are fetched into the cache
 * (download.ts).
 */
export interface RegistryFile {
  /** Path under the dataset's mirror folder (and the cache folder), e.g. `en_ewt-ud-dev.conllu`. */
  name: string;
  /** Pinned public URL (a commit, never a branch), or null where only a mirror has it. */
  url: string | null;
  sha256: string;
  size: number;
  note?: string;
}

export interface SplitSpec {
  files: string[];
  /** Glob over zip member names, for archives. */
  members?: string;
  /** Inclusive range of PTB file numbers (wsj_NNNN) for a fixed split of a treebank sample. */
  fileNumbers?: [number, number];
  /** Sentence label = the member's extension (`rt-polarity.pos` → `pos`). */
  labelFromMember?: boolean;
}

export interface DatasetEntry {
  name: string;
  description: string;
  licence: string;
  homepage: string;
  /** Folder name in a mirror and in the cache (`ud-english-ewt`). */
  mirror: string;
  format: string;
  files: RegistryFile[];
  splits: Record<string, SplitSpec>;
  splitNote?: string;
  /** Splits that exist upstream but not here, with what to do instead. */
  missingSplits?: Record<string, string>;
  defaultSplit?: string;
  /** Sentence counts per split, as published (SOURCES.md); `data info` checks against them. */
  counts: Record<string, number>;
  textColumn?: string;
  labelColumn?: string;
  /** Read NER tags leniently (repair I- after O with a warning): the upstream file has such tags. */
  lenient?: boolean;
}

let cached: Map<string, DatasetEntry> | undefined;

/** datasets/registry.json, found by walking up from this module (works from src/ and dist/src/). */
export function registryPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'datasets', 'registry.json');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('datasets/registry.json not found beside the installed package');
}

export function loadRegistry(): Map<string, DatasetEntry> {
  if (cached) return cached;
  const raw = JSON.parse(readFileSync(registryPath(), 'utf8')) as { datasets: Record<string, Omit<DatasetEntry, 'name'>> };
  cached = new Map(Object.entries(raw.datasets).map(([name, d]) => [name, { name, ...d }]));
  return cached;
}

export function isDatasetName(name: string): boolean {
  return loadRegistry().has(name);
}

export function getDataset(name: string): DatasetEntry {
  const d = loadRegistry().get(name);
  if (!d) {
    throw new InputError(`unknown dataset "${name}"`, {
      expected: `a registry name (${[...loadRegistry().keys()].join(', ')}) or a path to a corpus file`,
      found: JSON.stringify(name),
      fix: 'run `bert-probe data list`, or check the path',
    });
  }
  return d;
}

export function fileEntry(ds: DatasetEntry, name: string): RegistryFile {
  const f = ds.files.find((x) => x.name === name);
  if (!f) throw new Error(`registry: dataset ${ds.name} split names file ${name} that is not in its files list`);
  return f;
}

/** The split used when none is given: `defaultSplit`, else `test`, else the first. */
export function defaultSplit(ds: DatasetEntry): string {
  return ds.defaultSplit ?? (ds.splits.test ? 'test' : Object.keys(ds.splits)[0]!);
}

export function splitSpec(ds: DatasetEntry, split: string, flag = '--split'): SplitSpec {
  const s = ds.splits[split];
  if (s) return s;
  const missing = ds.missingSplits?.[split];
  throw new InputError(`dataset ${ds.name} has no split "${split}"`, {
    expected: `one of ${Object.keys(ds.splits).join(', ')}`,
    found: JSON.stringify(split) + (missing ? ` (${missing})` : ''),
    fix: flag === '--split'
      ? `pass ${ds.name}:${Object.keys(ds.splits)[0]} or another listed split`
      : `pass --train-split/--eval-split with listed splits, e.g. --train-split ${Object.keys(ds.splits)[0]} --eval-split ${Object.keys(ds.splits).at(-1)}`,
  });
}
