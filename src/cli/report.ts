import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { resultsFolder, writeReport } from '../results/report.js';
import { action, addOutputOptions, withExample, type OutputOptions } from './common.js';

/** `bert-probe report DIR`: rebuild DIR/report.html from the folder's files. */
export function register(program: Command): void {
  const cmd = program
    .command('report')
    .description('rebuild report.html of a results folder from its files (CSV, JSON, SVG)')
    .argument('<dir>', 'a results folder (results/<command>-<model>-<data>-<time>/)');
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe report results/structural-bert-base-uncased-ptb-20260101T120000Z');
  cmd.action(
    action(async (ui, dir: string, opts: OutputOptions) => {
      const abs = resultsFolder(dir);
      const path = writeReport(abs);
      if (opts.json) {
        const summary = join(abs, 'summary.json');
        process.stdout.write(existsSync(summary) ? readFileSync(summary, 'utf8') : '{}\n');
      } else {
        ui.info(`report: ${path}`);
      }
    }),
  );
}
