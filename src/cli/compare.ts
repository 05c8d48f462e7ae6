import type { Command } from 'commander';
import { compareRuns } from '../results/compare.js';
import { action, addOutputOptions, addRunOptions, withExample, type OutputOptions, type RunOptions } from './common.js';

/** `bert-probe compare DIR DIR...`: runs side by side in one results folder and report. */
export function register(program: Command): void {
  const cmd = program
    .command('compare')
    .description('put results folders side by side: merged results.csv, one chart per metric, report.html')
    .argument('<dirs...>', 'two or more results folders')
    .option('--key <cols>', 'columns that identify a row, comma-separated (default: shared text and layer/head columns)')
    .option('--label <name>', 'a name for each folder, in order (repeat the option)', (v: string, prev: string[] = []) => [...prev, v]);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe compare results/structural-bert-base-uncased-ptb-* results/structural-random-init-bert-base-uncased-ptb-*');
  cmd.action(
    action(async (ui, dirs: string[], opts: OutputOptions & RunOptions & { key?: string; label?: string[] }) => {
      await compareRuns({
        dirs,
        out: opts.out,
        force: opts.force,
        keys: opts.key ? opts.key.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
        labels: opts.label,
        ui,
        json: opts.json,
      });
    }),
  );
}
