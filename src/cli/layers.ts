import { Option, type Command } from 'commander';
import { FORMATS } from '../corpus/formats.js';
import { DEFAULT_DATA, EDGE_TASKS, type EdgeTask } from '../probes/edge-targets.js';
import { LayersFamily, type LayerMode, type LayersOptions } from '../probes/layers-family.js';
import { runProbe } from '../probes/runner.js';
import { InputError } from '../util/errors.js';
import type { Ui } from '../util/ui.js';
import { action, addModelOptions, addOutputOptions, addProbeRunOptions, addRunOptions, positiveInt, withExample } from './common.js';
import { join } from 'node:path';

/**
 * `bert-probe layers --task pos|ner|srl|deps[,…]`: Tenney et al. 2019's layer-wise scoring with
 * edge probes (src/probes/layers-family.ts). Tasks on the same corpus reuse one extraction (the
 * activation store is shared); each task writes its own results folder.
 */
interface LayersCliOptions extends Omit<LayersOptions, 'task' | 'modes'> {
  task: string;
  mode: string;
}

const MODES: readonly LayerMode[] = ['single', 'mix', 'cumulative'];

function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const out = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = out.filter((x) => !allowed.includes(x as T));
  if (bad.length || out.length === 0) throw new InputError(`bad --${what} '${value}'`, { expected: `a comma-separated list of ${allowed.join(', ')}`, found: bad[0] ?? 'nothing', fix: `e.g. --${what} ${allowed.slice(0, 2).join(',')}` });
  return [...new Set(out)] as T[];
}

export function register(program: Command): void {
  const cmd = program
    .command('layers')
    .description('layer-wise task scoring with edge probes (Tenney et al. 2019): single-layer F1, scalar-mix weights and centre of gravity, cumulative Δ and expected layer; --control-task selectivity, --mdl codelength')
    .requiredOption('-t, --task <tasks>', `task(s): ${EDGE_TASKS.join(', ')} (comma-separated)`)
    .option('-d, --data <name|file>', `corpus (default per task: ${EDGE_TASKS.map((t) => `${t} → ${DEFAULT_DATA[t]}`).join(', ')})`)
    .addOption(new Option('--tagset <tags>', 'pos: which tags').choices(['upos', 'xpos']).default('upos'))
    .option('-l, --layers <spec>', 'layers for single-layer (and control/MDL) probes: all, 0-12, 4,8,12', 'all')
    .option('--mode <modes>', 'single, mix, cumulative (comma-separated)', 'single,mix,cumulative')
    .addOption(new Option('--classifier <kind>', 'Tenney\'s MLP (Linear→Tanh→LayerNorm→Dropout→Linear) or one Linear layer').choices(['mlp', 'linear']).default('mlp'))
    .addOption(new Option('--span-pooling <how>', 'self-attentive span pooling (the authors\') or the mean of the span\'s pieces').choices(['attn', 'mean']).default('attn'))
    .option('--control-task', 'also train on control labels per word type (Hewitt & Liang 2019) and report selectivity')
    .option('--mdl', 'also report the online codelength per layer (Voita & Titov 2020)')
    .option('--max-steps <n>', 'training steps per probe at most (the authors: 250,000; sized here for a CPU)', positiveInt('--max-steps'), 1500)
    .option('--val-interval <n>', 'steps between dev validations', positiveInt('--val-interval'), 250)
    .option('--learning-rate <lr>', 'Adam learning rate (the authors: 1e-4)', (v: string) => {
      const x = Number(v);
      if (!(x > 0 && x < 1)) throw new InputError('bad --learning-rate', { expected: 'a number between 0 and 1', found: v, fix: 'e.g. --learning-rate 1e-4' });
      return x;
    }, 1e-4)
    .option('--batch-sentences <n>', 'sentences per batch (the authors: 32)', positiveInt('--batch-sentences'), 32)
    .option('--train-split <name>', 'split to train on (default: train)')
    .option('--dev-split <name>', 'split to select on (default: dev)')
    .option('--eval-split <name>', 'split to report on (default: test)')
    .addOption(new Option('--format <format>', 'format of a --data PATH').choices([...FORMATS]));
  addModelOptions(cmd);
  addProbeRunOptions(cmd);
  addRunOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe layers --task pos,deps --model bert-base-uncased --control random');
  cmd.action(action(async (ui: Ui, opts: LayersCliOptions) => {
    const tasks = parseList(opts.task, EDGE_TASKS, 'task') as EdgeTask[];
    const modes = parseList(opts.mode, MODES, 'mode');
    // Tasks on one corpus run back to back, so the second finds the activation store complete.
    const order = [...tasks].sort((a, b) => (opts.data ?? DEFAULT_DATA[a]).localeCompare(opts.data ?? DEFAULT_DATA[b]));
    for (const task of order) {
      const o: LayersOptions = { ...opts, task, modes, data: opts.data ?? DEFAULT_DATA[task], ...(opts.out && tasks.length > 1 ? { out: join(opts.out, task) } : {}) };
      await runProbe(new LayersFamily(o), o, ui);
    }
  }));
}
