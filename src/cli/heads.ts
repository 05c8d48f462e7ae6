import { Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { headsFamily, type HeadsOptions } from '../probes/heads.js';
import { runProbe } from '../probes/runner.js';
import type { Ui } from '../util/ui.js';
import { addSplitOptions } from './data-options.js';
import { action, addModelOptions, addOutputOptions, addProbeRunOptions, addRunOptions, nonNegativeInt, positiveInt, withExample } from './common.js';

export function register(program: Command): void {
  const cmd = program
    .command('heads')
    .description("What the attention heads do (Clark et al. 2019): per-head attention to [CLS]/[SEP]/punctuation/neighbours and entropies (word pieces), each head's accuracy as a parser per dependency relation against the best fixed offset, head clustering (Jensen–Shannon + MDS) and the Attn-only parser probe")
    .option('-d, --data <name|file>', 'treebank with dependency relations: registry name (ptb, ewt), NAME:SPLIT, or a CoNLL-U/CoNLL-X/PTB file or folder', 'ptb')
    .addOption(new Option('--from-pieces <how>', "word-level attention from a split word's pieces: mean of their rows (the paper) or the first piece's row (the authors' released code)").choices(['mean', 'first']).default('mean'))
    .option('--min-count <n>', 'relations with fewer occurrences stay out of the best-head table (the paper: 100)', positiveInt('--min-count'), 100)
    .option('--distance-sentences <n>', 'evaluation sentences (a seeded sample) for the Jensen–Shannon head distances; 0 skips the clustering', nonNegativeInt('--distance-sentences'), 100)
    .option('--no-parser', "skip Clark's Attn-only parser probe (its training is the slow part; the runner still extracts every split)")
    .option('--parser-epochs <n>', 'training epochs of the Attn-only parser (the authors: 1)', positiveInt('--parser-epochs'), 1)
    .option('--no-transpose', 'Attn-only parser: the L·H maps only, without their transposes')
    .option('--example <i>', 'index (0-based, evaluation split) of the sentence whose attention maps are drawn (default: the first of 8–20 words)', nonNegativeInt('--example'))
    .addOption(new Option('--head-rules <scheme>', 'head rules for constituency treebanks (ptb)').choices(['stanford', 'collins']))
    .addOption(new Option('--format <format>', 'format of a --data PATH (default: from the extension, then the content)').choices([...FORMATS]));
  addSplitOptions(cmd);
  addModelOptions(cmd);
  addProbeRunOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe heads --data ptb --model bert-base-uncased --eval-split dev --control random');
  cmd.action(action(async (ui: Ui, opts: HeadsOptions) => runProbe(headsFamily(), opts, ui)));
}
