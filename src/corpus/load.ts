import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import type { Corpus, Sentence } from './types.js';
import { ensureFile } from './download.js';
import { checkFormat, parseSource, sniffFormat, type FormatName, type ParseOptions } from './formats.js';
import type { HeadScheme } from './headrules.js';
import { defaultSplit, fileEntry, getDataset, isDatasetName, splitSpec, type DatasetEntry, type SplitSpec } from './registry.js';
import { decodeUtf8, emptyResult, globToRegExp, readBytes, readZipMembers, sha256Hex, type ReadResult } from './source.js';

/**
 * `--data` → Corpus. A spec is a registry NAME, NAME:SPLIT, or a PATH (file, zip of PTB `.mrg`
 * files, or a folder of `.mrg` files such as a full PTB WSJ `mrg/wsj` tree).
 *
 * Splits of things that have no split of their own (documented in `--help` of the commands
 * that train, via SPLIT_POLICY):
 *  - PTB trees by file number wsj_NNNN: the full WSJ treebank uses the standard sections
 *    02–21 train, 22 dev, 23 test (as Hewitt & Manning 2019); a sample inside sections 00–01
 *    (NLTK's wsj_0001–0199) uses train 0001–0159, dev 0160–0179, test 0180–0199.
 *  - any other single file: contiguous 80/10/10 by sentence order (first 80% train, next 10%
 *    dev, last 10% test), with a warning; or pass --train-split/--eval-split FILE paths.
 */
export const SPLIT_POLICY =
  'Splits: a registry dataset uses its own splits (bert-probe data info NAME). PTB trees split by file number: full WSJ sections 02-21/22/23 (train/dev/test); the NLTK sample wsj_0001-0159/0160-0179/0180-0199. Any other single file is split 80/10/10 by sentence order (first 80% train, next 10% dev, last 10% test) with a warning, unless --train-split/--eval-split name files.';

export interface LoadOptions {
  split?: string;
  format?: string;
  headRules?: HeadScheme;
  offline?: boolean;
  ui?: Ui;
  textColumn?: string;
  labelColumn?: string;
  /** NER: repair I- after O with a warning instead of failing (strict by default for paths). */
  lenient?: boolean;
}

export interface SplitOptions extends LoadOptions {
  trainSplit?: string;
  devSplit?: string;
  evalSplit?: string;
}

interface Parsed {
  kind: 'registry' | 'path';
  name: string;
  split?: string;
}

/**
 * The one data-selection path (issue 15): `--data NAME`, `NAME:SPLIT`, `PATH` or `PATH:SPLIT`,
 * with `--split` as the other way to name the split. A registry split that does not exist is
 * refused here (exit 2), before anything is loaded or a results folder is named after it; so is
 * a split given twice with two different values.
 */
export function parseDataSpec(spec: string, split?: string): Parsed {
  const p = parseSpecOnly(spec);
  if (split !== undefined && p.split !== undefined && split !== p.split) {
    throw new InputError('two different splits asked for', { file: spec, expected: 'NAME:SPLIT or --split SPLIT, not both with different values', found: `${spec} and --split ${split}`, fix: `drop one: --data ${p.name}:${split}, or --data ${spec} without --split` });
  }
  const chosen = p.split ?? split;
  if (p.kind === 'registry' && chosen !== undefined) splitSpec(getDataset(p.name), chosen); // throws "has no split" (exit 2)
  return chosen === undefined ? { kind: p.kind, name: p.name } : { ...p, split: chosen };
}

function parseSpecOnly(spec: string): Parsed {
  if (existsSync(spec)) return { kind: 'path', name: spec };
  const colon = spec.lastIndexOf(':');
  if (colon > 0 && existsSync(spec.slice(0, colon))) return { kind: 'path', name: spec.slice(0, colon), split: spec.slice(colon + 1) };
  const m = /^([A-Za-z0-9][\w.-]*)(?::([^:]*))?$/.exec(spec);
  if (m && isDatasetName(m[1]!)) return { kind: 'registry', name: m[1]!, split: m[2] };
  if (m && !m[1]!.includes('.') && !m[1]!.includes('/')) getDataset(m[1]!); // throws "unknown dataset" with the list
  throw new InputError('no such corpus file', { file: spec, expected: 'a registry name (bert-probe data list), NAME:SPLIT, or an existing path', found: 'nothing at this path', fix: 'check the path' });
}

export async function loadCorpus(spec: string, opts: LoadOptions = {}): Promise<Corpus> {
  const p = parseDataSpec(spec, opts.split);
  if (p.kind === 'registry') return loadRegistrySplit(getDataset(p.name), p.split ?? defaultSplitOf(p.name), opts);
  return loadPath(p.name, p.split, opts);
}

function defaultSplitOf(name: string): string {
  return defaultSplit(getDataset(name));
}

const SPLIT_NAMES = ['train', 'dev', 'test'] as const;
type SplitName = (typeof SPLIT_NAMES)[number];

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.includes('.') || existsSync(s);
}

export async function loadSplits(spec: string, opts: SplitOptions = {}): Promise<{ train: Corpus; dev: Corpus; test: Corpus }> {
  const p = parseDataSpec(spec, opts.split);
  const want: Record<SplitName, string | undefined> = { train: opts.trainSplit, dev: opts.devSplit, test: opts.evalSplit };
  if (p.split !== undefined) {
    // NAME:SPLIT (or --split): the corpus is that split alone, divided 80/10/10 like a single file.
    const given = SPLIT_NAMES.filter((s) => want[s] !== undefined);
    if (given.length) {
      throw new InputError(`--data ${spec} names one split and --${given[0] === 'test' ? 'eval' : given[0]}-split names another`, { file: spec, expected: 'either NAME:SPLIT (that split alone, divided 80/10/10) or NAME with --train-split/--dev-split/--eval-split', found: `${spec} and --${given[0] === 'test' ? 'eval' : given[0]}-split ${want[given[0]!]}`, fix: `drop ":${p.split}" to choose the splits with the flags` });
    }
    const one = p.kind === 'registry' ? await loadRegistrySplit(getDataset(p.name), p.split, opts) : await loadPath(p.name, p.split, opts);
    opts.ui?.warn(`${one.id}: one split given: its first 80% of sentences train, the next 10% are dev, the last 10% test (pass --data ${p.name} with --train-split/--eval-split to use the dataset's own splits)`);
    return { train: sliceCorpus(one, 'train', 0, 0.8), dev: sliceCorpus(one, 'dev', 0.8, 0.9), test: sliceCorpus(one, 'test', 0.9, 1) };
  }
  const memo = new Map<string, Promise<Corpus>>();
  const once = (key: string, f: () => Promise<Corpus>) => {
    if (!memo.has(key)) memo.set(key, f());
    return memo.get(key)!;
  };
  const out = {} as Record<SplitName, Corpus>;
  if (p.kind === 'registry') {
    const ds = getDataset(p.name);
    for (const s of SPLIT_NAMES) {
      const name = want[s] ?? s;
      if (looksLikePath(name) && !ds.splits[name]) out[s] = await once(`path:${name}`, () => loadPath(name, undefined, opts));
      else {
        const flag = s === 'train' ? '--train-split' : s === 'dev' ? '--dev-split' : '--eval-split';
        splitSpec(ds, name, flag);
        out[s] = await once(`split:${name}`, () => loadRegistrySplit(ds, name, opts));
      }
    }
    if (out.dev === out.train) opts.ui?.warn(`${ds.name}: dev split = train split (${out.train.split}); model selection sees the training data`);
    return out;
  }
  // a path
  const path = p.name;
  const isTreebank = statSync(path).isDirectory() || path.toLowerCase().endsWith('.zip');
  if (isTreebank) {
    for (const s of SPLIT_NAMES) {
      const w = want[s] ?? s;
      out[s] = looksLikePath(w) && !SPLIT_NAMES.includes(w as SplitName) ? await once(`path:${w}`, () => loadPath(w, undefined, opts)) : await once(`split:${w}`, () => loadPath(path, w, opts));
    }
    return out;
  }
  const explicit = SPLIT_NAMES.filter((s) => want[s] !== undefined && looksLikePath(want[s]!));
  if (!explicit.length) {
    opts.ui?.warn(`${path} has no splits: using the first 80% of its sentences to train, the next 10% as dev, the last 10% as test (pass --train-split/--eval-split FILE to choose)`);
    for (const s of SPLIT_NAMES) out[s] = await once(`split:${want[s] ?? s}`, () => loadPath(path, want[s] ?? s, opts));
    return out;
  }
  const trainPath = want.train && looksLikePath(want.train) ? want.train : path;
  out.test = await once(`path:${want.test ?? path}`, () => loadPath(want.test && looksLikePath(want.test) ? want.test : path, undefined, opts));
  if (want.dev && looksLikePath(want.dev)) {
    out.train = await once(`path:${trainPath}`, () => loadPath(trainPath, undefined, opts));
    out.dev = await once(`path:${want.dev}`, () => loadPath(want.dev!, undefined, opts));
  } else {
    opts.ui?.warn(`no --dev-split file: the last 10% of ${trainPath} is the dev split, the first 90% trains`);
    const whole = await loadPath(trainPath, undefined, opts);
    out.train = sliceCorpus(whole, 'train', 0, 0.9);
    out.dev = sliceCorpus(whole, 'dev', 0.9, 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

function finish(id: string, format: string, split: string | undefined, files: string[], hashed: Uint8Array[] | string, r: ReadResult, ui?: Ui): Corpus {
  for (const w of r.warnings) ui?.warn(w);
  const skipped = Object.entries(r.skipped);
  // skipped on purpose is reported, never silent (also kept in Corpus.skipped for manifests)
  if (skipped.length) ui?.info(`${id}: skipped ${skipped.map(([k, v]) => `${v} ${k}`).join(', ')}`);
  return { id, format, split, sha256: typeof hashed === 'string' ? hashed : sha256Hex(hashed), files, sentences: r.sentences, skipped: r.skipped, warnings: r.warnings };
}

function memberFilter(spec: SplitSpec): (name: string) => boolean {
  const re = spec.members ? globToRegExp(spec.members) : null;
  const range = spec.fileNumbers;
  return (name) => {
    if (re && !re.test(name)) return false;
    if (range) {
      const m = /(\d{4})\.mrg$/.exec(name);
      if (!m) return false;
      const n = Number(m[1]);
      return n >= range[0] && n <= range[1];
    }
    return true;
  };
}

export async function loadRegistrySplit(ds: DatasetEntry, split: string, opts: LoadOptions): Promise<Corpus> {
  const spec = splitSpec(ds, split);
  const format = checkFormat(opts.format ?? ds.format);
  const popts: ParseOptions = {
    headRules: opts.headRules,
    textColumn: opts.textColumn ?? ds.textColumn,
    labelColumn: opts.labelColumn ?? ds.labelColumn,
    lenient: opts.lenient ?? ds.lenient,
  };
  const r = emptyResult();
  const hashed: Uint8Array[] = [];
  const shas: string[] = [];
  const files: string[] = [];
  const spinner = spec.files.length > 3 ? opts.ui?.spinner(`reading ${ds.name}:${split} (${spec.files.length} files)`) : undefined;
  for (const name of spec.files) {
    const local = await ensureFile(ds, fileEntry(ds, name), { offline: opts.offline, ui: opts.ui });
    hashed.push(local.bytes);
    shas.push(local.sha256);
    files.push(local.path);
    if (name.toLowerCase().endsWith('.zip')) {
      const members = await readZipMembers(local.path, memberFilter(spec), local.bytes);
      for (const m of members) {
        const label = spec.labelFromMember ? m.name.split('.').pop() : undefined;
        parseSource({ name: `${local.path}:${m.name}`, text: decodeUtf8(m.bytes, `${local.path}:${m.name}`) }, format, { ...popts, label }, r);
      }
    } else {
      parseSource({ name: local.path, text: decodeUtf8(local.bytes, local.path) }, format, popts, r);
    }
  }
  spinner?.succeed(`read ${ds.name}:${split}: ${r.sentences.length} sentences`);
  // one file: its verified sha256 is the corpus hash (no second pass over the bytes)
  return finish(`${ds.name}:${split}`, format, split, files, shas.length === 1 ? shas[0]! : hashed, r, opts.ui);
}

/** Number of a PTB file (`wsj_2301.mrg` → 2301), or undefined. */
function ptbNumber(name: string): number | undefined {
  const m = /wsj_(\d{4})\.mrg$/i.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The PTB split a file number belongs to (see SPLIT_POLICY). */
export function ptbSplitOf(n: number, sampleOnly: boolean): SplitName | undefined {
  if (sampleOnly) return n <= 159 ? 'train' : n <= 179 ? 'dev' : 'test';
  const section = Math.floor(n / 100);
  if (section >= 2 && section <= 21) return 'train';
  if (section === 22) return 'dev';
  if (section === 23) return 'test';
  return undefined;
}

function selectPtb(names: string[], split: string | undefined, where: string): string[] {
  if (!split || split === 'all') return names;
  if (!SPLIT_NAMES.includes(split as SplitName)) {
    throw new InputError(`unknown split "${split}" for a treebank`, { file: where, expected: 'train, dev, test or all', found: JSON.stringify(split), fix: 'PTB trees are split by file number; pick one of these' });
  }
  const nums = names.map(ptbNumber);
  const numbered = nums.filter((n): n is number => n !== undefined);
  if (!numbered.length) {
    throw new InputError('cannot split these trees by file number', { file: where, expected: 'files named wsj_NNNN.mrg', found: basename(names[0] ?? '?'), fix: 'pass the split files with --train-split/--eval-split, or use the whole treebank (--split all)' });
  }
  const sampleOnly = numbered.every((n) => n < 200);
  const picked = names.filter((_, i) => nums[i] !== undefined && ptbSplitOf(nums[i]!, sampleOnly) === split);
  if (!picked.length) throw new InputError(`no trees in split "${split}"`, { file: where, expected: sampleOnly ? 'NLTK sample files wsj_0001-0199' : 'WSJ sections 02-21 (train), 22 (dev), 23 (test)', found: `${numbered.length} files, none in that range`, fix: 'point --data at the full mrg/wsj folder' });
  return picked;
}

function listMrg(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, depth: number) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 6) walk(p, depth + 1);
      else if (e.isFile() && /\.mrg$/i.test(e.name)) out.push(p);
    }
  };
  walk(dir, 0);
  return out;
}

export async function loadPath(path: string, split: string | undefined, opts: LoadOptions): Promise<Corpus> {
  if (!existsSync(path)) readBytes(path); // throws the "file not found" InputError
  const popts: ParseOptions = { headRules: opts.headRules, textColumn: opts.textColumn, labelColumn: opts.labelColumn, lenient: opts.lenient };
  const r = emptyResult();
  const hashed: Uint8Array[] = [];
  const id = split ? `${path}:${split}` : path;
  if (statSync(path).isDirectory()) {
    const all = listMrg(path);
    if (!all.length) throw new InputError('no .mrg files in this folder', { file: path, expected: 'a PTB folder (e.g. treebank_3/parsed/mrg/wsj with sections 00-24)', found: 'no *.mrg files', fix: 'point --data at a corpus file, or at the mrg folder' });
    const files = selectPtb(all, split, path);
    for (const f of files) {
      const bytes = readBytes(f);
      hashed.push(bytes);
      parseSource({ name: f, text: decodeUtf8(bytes, f) }, 'ptb', popts, r);
    }
    return finish(id, 'ptb', split, files.map((f) => relative(process.cwd(), f) || f), hashed, r, opts.ui);
  }
  if (path.toLowerCase().endsWith('.zip')) {
    const all = await readZipMembers(path, (n) => /\.mrg$/i.test(n));
    if (!all.length) throw new InputError('no .mrg members in this zip', { file: path, expected: 'a zip of PTB .mrg files (e.g. NLTK treebank.zip)', found: 'no *.mrg members', fix: 'unzip it and point --data at the corpus file' });
    const keep = new Set(selectPtb(all.map((m) => m.name), split, path));
    for (const m of all) {
      if (!keep.has(m.name)) continue;
      hashed.push(m.bytes);
      parseSource({ name: `${path}:${m.name}`, text: decodeUtf8(m.bytes, `${path}:${m.name}`) }, 'ptb', popts, r);
    }
    return finish(id, 'ptb', split, [path], hashed, r, opts.ui);
  }
  const bytes = readBytes(path);
  const text = decodeUtf8(bytes, path);
  const format: FormatName = opts.format ? checkFormat(opts.format) : sniffFormat(path, text);
  parseSource({ name: path, text }, format, popts, r);
  hashed.push(bytes);
  const whole = finish(path, format, undefined, [path], hashed, r, opts.ui);
  if (!split || split === 'all') return whole;
  if (!SPLIT_NAMES.includes(split as SplitName)) {
    throw new InputError(`unknown split "${split}" for a single file`, { file: path, expected: 'train, dev or test (80/10/10 by sentence order) or all', found: JSON.stringify(split), fix: 'drop the split to use the whole file' });
  }
  const [a, b] = split === 'train' ? [0, 0.8] : split === 'dev' ? [0.8, 0.9] : [0.9, 1];
  return sliceCorpus(whole, split, a, b);
}

/** Sentences [floor(a·n), floor(b·n)) of a corpus, as a split of it (deterministic). */
export function sliceCorpus(c: Corpus, split: string, a: number, b: number): Corpus {
  const n = c.sentences.length;
  const sentences: Sentence[] = c.sentences.slice(Math.floor(a * n), b >= 1 ? n : Math.floor(b * n));
  if (!sentences.length) throw new InputError(`split "${split}" of ${c.id} is empty`, { file: c.files[0], expected: 'enough sentences for an 80/10/10 split (at least 10)', found: `${n} sentences`, fix: 'pass --train-split/--eval-split files' });
  return { ...c, id: `${c.id}:${split}`, split, sentences };
}
