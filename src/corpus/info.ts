import { mirrorSetting } from './download.js';
import { loadRegistrySplit, type LoadOptions } from './load.js';
import { defaultSplit, type DatasetEntry } from './registry.js';
import { corpusStats, type CorpusStats } from './stats.js';

/** What `bert-probe data info NAME --json` prints: registry metadata plus counts read from the data. */
export interface SplitInfo extends CorpusStats {
  /** Published sentence count (SOURCES.md), where known. */
  expected?: number;
  matches?: boolean;
  files: string[];
  sha256: string;
}

export interface DatasetInfo {
  name: string;
  description: string;
  licence: string;
  homepage: string;
  format: string;
  headRules?: string;
  defaultSplit: string;
  splitNote?: string;
  missingSplits?: Record<string, string>;
  source?: { mirror: string };
  files: { name: string; url: string | null; sha256: string; size: number }[];
  publishedCounts: Record<string, number>;
  splits: Record<string, SplitInfo>;
  total: { sentences: number; words: number };
}

export async function datasetInfo(ds: DatasetEntry, opts: LoadOptions, only?: string[]): Promise<DatasetInfo> {
  const splits: Record<string, SplitInfo> = {};
  for (const split of only ?? Object.keys(ds.splits)) {
    const c = await loadRegistrySplit(ds, split, opts);
    const st = corpusStats(c);
    const expected = ds.counts[split];
    splits[split] = { ...st, expected, matches: expected === undefined ? undefined : expected === st.sentences, files: ds.splits[split]!.files, sha256: c.sha256 };
  }
  const mirror = mirrorSetting();
  return {
    name: ds.name,
    description: ds.description,
    licence: ds.licence,
    homepage: ds.homepage,
    format: ds.format,
    headRules: ds.format === 'ptb' ? (opts.headRules ?? 'stanford') : undefined,
    defaultSplit: defaultSplit(ds),
    splitNote: ds.splitNote,
    missingSplits: ds.missingSplits,
    source: mirror ? { mirror: mirror.kind === 'folder' ? `${mirror.path}/${ds.mirror}` : `${mirror.url}/${ds.mirror}` } : undefined,
    files: ds.files.map((f) => ({ name: f.name, url: f.url, sha256: f.sha256, size: f.size })),
    publishedCounts: ds.counts,
    splits,
    total: {
      sentences: Object.values(splits).reduce((a, s) => a + s.sentences, 0),
      words: Object.values(splits).reduce((a, s) => a + s.words, 0),
    },
  };
}
