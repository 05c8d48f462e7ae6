import type { Command } from 'commander';
import { Option } from 'commander';
import { corpusToConllu } from '../corpus/conllu-write.js';
import { ensureFile } from '../corpus/download.js';
import { loadCorpus } from '../corpus/load.js';
import { getDataset, isDatasetName, loadRegistry, type DatasetEntry } from '../corpus/registry.js';
import { corpusStats, type CorpusStats } from '../corpus/stats.js';
import { datasetInfo, type SplitInfo } from '../corpus/info.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Ui } from '../util/ui.js';
import { action, addOutputOptions, isOffline, withExample, type OutputOptions } from './common.js';
import { addDataOptions, loadOptionsFrom, type DataCliOptions } from './data-options.js';

/**
 * `bert-probe data list | info NAME | fetch NAME | convert DATA --to conllu`: the dataset
 * registry from the command line (issue 3).
 */
export function register(program: Command): void {
  const data = program.command('data').description('named datasets: list, inspect, fetch into the cache, convert to CoNLL-U');
  withExample(data, 'bert-probe data info ptb');

  addOutputOptions(data.command('list').description('list the registry datasets')).action(
    action((ui: Ui, o: OutputOptions) => {
      const rows = [...loadRegistry().values()].map((d) => ({ name: d.name, format: d.format, splits: Object.keys(d.splits), licence: d.licence, description: d.description }));
      if (o.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const w = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) process.stdout.write(`${r.name.padEnd(w)}  ${r.format.padEnd(7)}  ${r.splits.join(',').padEnd(24)}  ${r.description}\n`);
      void ui;
    }),
  );

  addOutputOptions(
    addDataOptions(data.command('info').argument('<name|path>', 'registry name, NAME:SPLIT, or a corpus path').description('licence, source, splits and sentence/word counts (reads the data; fetches it if needed)'), { positional: true })
      .option('--offline', 'never touch the network'),
  )
    // Only what this command takes: the split policy of the training commands names --train-split/--eval-split, which info has not (issue 15 item 10).
    .addHelpText('after', '\nSplits: a registry dataset lists its own splits here; a PATH is read whole (--split train|dev|test takes its first 80% / next 10% / last 10% of sentences).\n')
    .action(action(async (ui: Ui, target: string, o: DataCliOptions & OutputOptions) => info(ui, target, o)));

  addOutputOptions(data.command('fetch').argument('<name>', 'registry name').description('download (or verify) every file of a dataset into the cache').option('--offline', 'only verify what is cached')).action(
    action(async (ui: Ui, name: string, o: OutputOptions & { offline?: boolean }) => {
      const ds = getDataset(name);
      const done: { file: string; path: string; origin: string; size: number }[] = [];
      const spin = ui.spinner(`fetching ${ds.name} (${ds.files.length} file${ds.files.length === 1 ? '' : 's'})`);
      for (const f of ds.files) {
        const local = await ensureFile(ds, f, { offline: isOffline(o), ui });
        done.push({ file: f.name, path: local.path, origin: local.origin, size: f.size });
      }
      spin.succeed(`${ds.name}: ${done.length} file(s) verified (sha256)`);
      if (o.json) process.stdout.write(JSON.stringify({ name: ds.name, files: done }, null, 2) + '\n');
      else for (const d of done) ui.info(`  ${d.file}  ${d.origin === 'mirror' ? 'in mirror' : d.origin === 'cache' ? 'cached' : 'downloaded'}: ${d.path}`);
    }),
  );

  const convert = addOutputOptions(
    addDataOptions(data.command('convert').argument('<data>', 'registry NAME[:SPLIT] or a corpus path').description('write a corpus as CoNLL-U (PTB trees with converted heads and relations)'), { positional: true })
      .addOption(new Option('--to <format>', 'output format').choices(['conllu']).default('conllu'))
      .option('-o, --out <file>', 'write here (atomically) instead of stdout')
      .option('--offline', 'never touch the network'),
  );
  withExample(convert, 'bert-probe data convert ptb --split test --head-rules stanford -o ptb-test.conllu');
  convert.action(
    action(async (ui: Ui, spec: string, o: DataCliOptions & OutputOptions & { out?: string; to: string }) => {
      const c = await loadCorpus(spec, loadOptionsFrom(o, ui, isOffline(o)));
      const text = corpusToConllu(c);
      if (o.out) {
        writeFileAtomic(o.out, text);
        ui.info(`wrote ${c.sentences.length} sentences of ${c.id} to ${o.out}`);
      } else process.stdout.write(text);
    }),
  );
}

async function info(ui: Ui, target: string, o: DataCliOptions & OutputOptions): Promise<void> {
  const opts = loadOptionsFrom(o, ui, isOffline(o));
  const [name, only] = target.split(':') as [string, string | undefined];
  if (!isDatasetName(name)) {
    const c = await loadCorpus(target, opts);
    const st = corpusStats(c);
    if (o.json) process.stdout.write(JSON.stringify({ id: c.id, format: c.format, sha256: c.sha256, files: c.files, ...st, warnings: c.warnings }, null, 2) + '\n');
    else printStats(c.id, c.format, st);
    return;
  }
  const ds = getDataset(name);
  const out = await datasetInfo(ds, opts, only ? [only] : o.split ? [o.split] : undefined);
  if (o.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  printInfo(ds, out.source?.mirror, out.splits, out.headRules ?? 'stanford');
}

function printInfo(ds: DatasetEntry, mirror: string | undefined, splits: Record<string, SplitInfo>, headRules: string): void {
  const p = (s: string) => process.stdout.write(s + '\n');
  p(`${ds.name}: ${ds.description}`);
  p(`  licence:   ${ds.licence}`);
  p(`  homepage:  ${ds.homepage}`);
  p(`  format:    ${ds.format}${ds.format === 'ptb' ? ` (dependencies by ${headRules} head rules; --head-rules collins|stanford)` : ''}`);
  const urls = [...new Set(ds.files.map((f) => (f.url ? f.url.replace(/[^/]+$/, '') : '(no public URL; mirror only)')))];
  p(`  source:    ${urls.length > 3 ? `${urls[0]} … (${ds.files.length} files)` : urls.join(', ')}`);
  if (mirror) p(`  mirror:    ${mirror}`);
  if (ds.splitNote) p(`  splits:    ${ds.splitNote}`);
  for (const [k, v] of Object.entries(ds.missingSplits ?? {})) p(`  no ${k}:  ${v}`);
  const w = Math.max(5, ...Object.keys(splits).map((s) => s.length));
  p(`  ${'split'.padEnd(w)}  ${'sentences'.padStart(9)}  ${'words'.padStart(9)}  published   annotations`);
  for (const [name, s] of Object.entries(splits)) {
    const ann = annotations(s);
    const pub = s.expected === undefined ? '-' : `${s.expected.toLocaleString('en-US')}${s.matches ? ' ok' : ' MISMATCH'}`;
    p(`  ${name.padEnd(w)}  ${s.sentences.toLocaleString('en-US').padStart(9)}  ${s.words.toLocaleString('en-US').padStart(9)}  ${pub.padEnd(10)}  ${ann}`);
  }
  const all = ds.counts.all;
  if (all !== undefined && !splits.all) {
    const sum = Object.values(splits).reduce((a, s) => a + s.sentences, 0);
    const words = Object.values(splits).reduce((a, s) => a + s.words, 0);
    p(`  ${'total'.padEnd(w)}  ${sum.toLocaleString('en-US').padStart(9)}  ${words.toLocaleString('en-US').padStart(9)}  ${`${all.toLocaleString('en-US')}${sum === all ? ' ok' : ' MISMATCH'}`}`);
  }
  const skipped = Object.entries(Object.values(splits).reduce<Record<string, number>>((acc, s) => {
    for (const [k, v] of Object.entries(s.skipped)) acc[k] = (acc[k] ?? 0) + v;
    return acc;
  }, {}));
  if (skipped.length) p(`  skipped on purpose: ${skipped.map(([k, v]) => `${v.toLocaleString('en-US')} ${k}`).join(', ')}`);
}

function annotations(s: CorpusStats): string {
  const a: string[] = [];
  if (s.withHeads) a.push(`heads (${s.singleRooted}/${s.withHeads} single-rooted)`);
  if (s.entities) a.push(`${s.entities} entities`);
  if (s.frames) a.push(`${s.frames} SRL frames`);
  if (s.senses) a.push(`${s.senses} sense tags`);
  const labels = Object.entries(s.labels);
  if (labels.length) a.push(`labels ${labels.map(([k, v]) => `${k}:${v}`).join(' ')}`);
  return a.join(', ');
}

function printStats(id: string, format: string, st: CorpusStats): void {
  const p = (s: string) => process.stdout.write(s + '\n');
  p(`${id} (${format}): ${st.sentences.toLocaleString('en-US')} sentences, ${st.words.toLocaleString('en-US')} words; ${annotations(st) || 'words only'}`);
  const skipped = Object.entries(st.skipped);
  if (skipped.length) p(`  skipped on purpose: ${skipped.map(([k, v]) => `${v} ${k}`).join(', ')}`);
}

