import { Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { SPLIT_POLICY, type LoadOptions, type SplitOptions } from '../corpus/load.js';
import type { RunnerOptions } from '../probes/contract.js';
import type { Ui } from '../util/ui.js';

/**
 * The options every command that reads a corpus shares (issue 3), defined once:
 * --data NAME[:SPLIT]|PATH, --split, --format, --head-rules, --text-column, --label-column,
 * --lenient (`positional`: the command takes the corpus as an argument, no --data); addSplitOptions adds --train-split/--dev-split/--eval-split for commands that
 * train a probe.
 */
/** The data options, as the probe runner's options name them (src/probes/contract.ts); all optional here. */
export type DataCliOptions = Partial<Pick<RunnerOptions, 'data' | 'split' | 'format' | 'headRules' | 'textColumn' | 'labelColumn' | 'lenient' | 'offline' | 'trainSplit' | 'devSplit' | 'evalSplit'>>;

export function addDataOptions(cmd: Command, opts: { required?: boolean; defaultData?: string; positional?: boolean } = {}): Command {
  if (!opts.positional) {
    const data = new Option('-d, --data <name[:split]|path>', 'corpus: a registry name (bert-probe data list), NAME:SPLIT, or a file/folder path');
    if (opts.defaultData) data.default(opts.defaultData);
    if (opts.required && !opts.defaultData) data.makeOptionMandatory();
    cmd.addOption(data);
  }
  return cmd
    .option('--split <split>', 'split of a registry dataset (default: its test split)')
    .addOption(new Option('--format <format>', 'format of a --data PATH (default: from the extension)').choices([...FORMATS]))
    .addOption(new Option('--head-rules <scheme>', 'PTB constituency → dependency head rules').choices(['stanford', 'collins']).default('stanford'))
    .option('--text-column <name>', 'CSV/TSV column with the sentence')
    .option('--label-column <name>', 'CSV/TSV column with the label')
    .option('--lenient', 'NER files: repair an I- tag that starts an entity (read as B-) with a warning instead of failing');
}

export function addSplitOptions(cmd: Command): Command {
  return cmd
    .option('--train-split <split|file>', 'split (or file) to fit on (default: train)')
    .option('--dev-split <split|file>', 'split (or file) for model selection (default: dev)')
    .option('--eval-split <split|file>', 'split (or file) to report on (default: test)')
    .addHelpText('after', `\n${SPLIT_POLICY}\n`);
}

export function loadOptionsFrom(o: DataCliOptions, ui: Ui, offline: boolean): LoadOptions & SplitOptions {
  return {
    split: o.split,
    format: o.format,
    headRules: o.headRules,
    textColumn: o.textColumn,
    labelColumn: o.labelColumn,
    lenient: o.lenient,
    offline,
    ui,
    trainSplit: o.trainSplit,
    devSplit: o.devSplit,
    evalSplit: o.evalSplit,
  };
}
