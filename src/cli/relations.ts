import { InvalidArgumentError, Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { relationsFamily, type RelationsOptions } from '../probes/relations.js';
import { runProbe } from '../probes/runner.js';
import type { Ui } from '../util/ui.js';
import { addSplitOptions } from './data-options.js';
import { action, addModelOptions, addOutputOptions, addProbeRunOptions, addRunOptions, positiveInt, withExample } from './common.js';

function l2List(v: string): number[] {
  const xs = v.split(',').map((s) => Number(s.trim()));
  if (!v.trim() || xs.some((x) => !Number.isFinite(x) || x < 0)) throw new InvalidArgumentError(`--l2 must be a comma-separated list of non-negative numbers, e.g. 0,1e-4,1e-3 (got '${v}')`);
  return xs;
}

function ratio(v: string): number {
  const x = Number(v);
  if (!v.trim() || !Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`--negatives must be a non-negative number of non-arc pairs per arc, e.g. 1 (got '${v}')`);
  return x;
}

export function register(program: Command): void {
  const cmd = program
    .command('relations')
    .description("Coenen et al. 2019's attention probe: linear classifiers on a word pair's model-wide attention vector (every head of every layer) — is there a dependency arc between the words, and which relation labels it?")
    .option('-d, --data <name|file>', 'treebank with dependency relations: registry name (ptb, ewt), NAME:SPLIT, or a CoNLL-U/CoNLL-X/PTB file or folder', 'ptb')
    .addOption(new Option('--probe <kind>', 'which probe to train').choices(['binary', 'relation', 'both']).default('both'))
    .option('--negatives <r>', 'non-arc pairs sampled per arc for the binary probe (seeded)', ratio, 1)
    .option('--symmetric', 'append the attention j→i to i→j (2·L·H features)')
    .addOption(new Option('--from-pieces <how>', "word-level attention from a split word's pieces: mean of their rows (Clark et al.'s paper) or the first piece's row").choices(['mean', 'first']).default('mean'))
    .option('--l2 <list>', 'L2 strengths λ tried, the best on dev kept (default 0,1e-5,1e-4,1e-3,1e-2)', l2List)
    .option('--max-epochs <n>', 'training epochs at most per λ (early stopping on dev accuracy)', positiveInt('--max-epochs'), 20)
    .addOption(new Option('--head-rules <scheme>', 'head rules for constituency treebanks (ptb)').choices(['stanford', 'collins']))
    .addOption(new Option('--format <format>', 'format of a --data PATH (default: from the extension, then the content)').choices([...FORMATS]));
  addSplitOptions(cmd);
  addModelOptions(cmd);
  addProbeRunOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe relations --data ptb --model bert-base-uncased --negatives 1 --control random');
  cmd.action(action(async (ui: Ui, opts: RelationsOptions) => runProbe(relationsFamily(), opts, ui)));
}
