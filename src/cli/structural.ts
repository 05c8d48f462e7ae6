import { Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { runProbe } from '../probes/runner.js';
import { structuralFamily, type StructuralOptions } from '../probes/structural-family.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addProbeRunOptions, addRunOptions, positiveInt, withExample } from './common.js';

export function register(program: Command): void {
  const cmd = program
    .command('structural')
    .description("Hewitt & Manning's structural probe: can a linear map of each layer's word vectors recover the dependency tree (distance probe: UUAS, DSpr.) and word depth (depth probe: root accuracy, NSpr.)?")
    .option('-d, --data <name|file>', 'treebank: registry name (ptb, ewt), NAME:SPLIT, or a CoNLL-U/CoNLL-X/PTB file or folder', 'ptb')
    .option('-l, --layers <spec>', 'hidden states to probe: all, 0-12, 4,8,12, -1 (layer.0, the embeddings baseline, is always added)', 'all')
    .addOption(new Option('--probe <kind>', 'which probe to train').choices(['distance', 'depth', 'both']).default('both'))
    .option('--rank <r>', 'rows of the probe matrix B (default: the hidden size)', positiveInt('--rank'))
    .option('--save-distances', 'write every predicted distance matrix into predictions.jsonl (needed to recompute DSpr.)')
    .option('--max-epochs <n>', 'training epochs at most (Hewitt & Manning: 40)', positiveInt('--max-epochs'), 40)
    .option('--train-split <name>', 'split to train on (default: train)')
    .option('--dev-split <name>', 'split to select the epoch on (default: dev)')
    .option('--eval-split <name>', 'split to report on (default: test)')
    .addOption(new Option('--head-rules <scheme>', 'head rules for constituency treebanks (ptb)').choices(['stanford', 'collins']))
    .addOption(new Option('--format <format>', 'format of a --data PATH (default: from the extension, then the content)').choices([...FORMATS]));
  addModelOptions(cmd);
  addProbeRunOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe structural --data ptb --model bert-base-uncased --layers all --control random');
  cmd.action(
    action(async (ui: Ui, opts: StructuralOptions) => runProbe(structuralFamily, opts, ui)),
  );
}
