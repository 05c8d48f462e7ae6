import { Command, Option, InvalidArgumentError } from 'commander';
import { exitCodeOf, InputError } from '../util/errors.js';
import { DEFAULT_MODEL, isOffline } from '../model/resolve.js';
import type { RunnerOptions } from '../probes/contract.js';
import { Ui } from '../util/ui.js';
import { installSignalHandlers } from '../util/interrupt.js';
import { FileSystemError, translateFsError } from '../util/fs-errors.js';
import { PRECISIONS } from '../model/types.js';

export { DEFAULT_MODEL, isOffline };

/**
 * Options every command shares (DESIGN.md), defined once. Commands that run a model call
 * addModelOptions; every command calls addOutputOptions.
 */
export interface OutputOptions {
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

/** The model options (addModelOptions), as the probe runner's options name them (src/probes/contract.ts). */
export type ModelOptions = Pick<RunnerOptions, 'model' | 'revision' | 'engine' | 'backend' | 'device' | 'precision' | 'batchSize' | 'offline' | 'seed'> & {
  /** Seed of random-init model weights (random[:CONFIG] models and --control random). */
  modelSeed: number;
};

export interface RunOptions {
  out?: string;
  force?: boolean;
  resume?: boolean;
}

export type CommonOptions = OutputOptions & ModelOptions & RunOptions;


export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer (got '${value}')`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer (got '${value}')`);
    return n;
  };
}

export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option('--quiet', 'print only errors')
    .option('--json', 'print the summary JSON on stdout (nothing else there)')
    .option('--debug', 'print debug details and stack traces');
}

export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <id|dir|random[:CONFIG]>', `model: Hugging Face id, local folder, or random[:CONFIG] control (default: ${DEFAULT_MODEL})`)
    .option('--revision <rev>', 'Hub revision (branch, tag or commit)')
    .addOption(new Option('--engine <engine>', 'forward-pass engine').choices(['auto', 'tfjs', 'onnx']).default('auto'))
    .addOption(new Option('--backend <backend>', 'tfjs backend (default: tensorflow if installed, else wasm, else cpu)').choices(['tensorflow', 'wasm', 'cpu']))
    .addOption(new Option('--device <device>', 'onnx execution provider').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--precision <p>', 'forward-pass precision: fp32, or int8 (onnx engine: linear layers dynamically quantised to int8; faster, small error, see docs/precision.md)').choices([...PRECISIONS]).default('fp32'))
    .option('-b, --batch-size <n>', 'sentences per forward batch', positiveInt('--batch-size'), 16)
    .option('--offline', 'never touch the network (HF_HUB_OFFLINE=1 does the same)')
    .option('--seed <n>', 'seed of the probes: initialisation, shuffles, dropout (random-init weights use --model-seed)', nonNegativeInt('--seed'), 42)
    .option('--model-seed <n>', 'seed of random-init model weights (random[:CONFIG], --control random), apart from --seed so probe seeds vary alone', nonNegativeInt('--model-seed'), 42);
}

/**
 * Options of every command that trains probes through src/probes/runner.ts: the data cap, the
 * random-init control, repeated probe seeds, and features computed elsewhere.
 */
export function addProbeRunOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--control <kind>', 'also probe the random-init control model of the same shape (labelled random-init)').choices(['random']))
    .option('--limit <n>', 'use only the first N usable sentences of each split (for quick runs and tests)', positiveInt('--limit'))
    .option('--jobs <n>', 'units (layers, heads, …) trained at once, all their probes together, the cores shared; default: a probe per core (each in its own worker thread, one onnxruntime thread each), the next unit starting as a core frees', positiveInt('--jobs'))
    .option('--seeds <k>', 'train every probe K times (seeds --seed, --seed+1, …) and report each metric as mean with its standard deviation beside it', positiveInt('--seeds'), 1)
    .option('--activations <split=path...>', 'use activations computed elsewhere instead of running the model: train=PATH dev=PATH test=PATH, each a bert-probe extract store (repeat a split for --shard stores) or a structural-probes .hdf5 file; features of the whole split are read for the sentences the probe keeps')
    .option('--activations-first-layer <n>', "our layer index of an .hdf5 file's first row: structural-probes' BERT files (convert_raw_to_bert.py) hold layers 1..L without the embeddings, so pass 1 (default 0)", nonNegativeInt('--activations-first-layer'));
}

export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('-o, --out <dir>', 'results folder (default: results/<command>-<model>-<data>-<timestamp>)')
    .option('--force', 'write into an existing non-empty --out folder (a finished run there is replaced)')
    .option('--resume', 'continue an interrupted run, skipping finished probes: the --out folder, or without --out the newest unfinished results/<command>-<model>-<data>-* folder (a rerun with the same --out resumes by itself)');
}


/**
 * Wrap a command's action: one Ui per run, errors printed as the user needs them (no stack
 * trace unless --debug), exit code 2 for bad input and 1 for runtime failures.
 */
export function action<A extends unknown[]>(
  fn: (ui: Ui, ...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    // commander passes (...positionals, options, command); options are the second to last.
    const opts = (args.length >= 2 ? args[args.length - 2] : {}) as OutputOptions;
    const ui = new Ui({ quiet: opts.quiet, json: opts.json, debug: opts.debug });
    // SIGINT/SIGTERM: finished work is kept, the manifest says interrupted, exit 130/143 (util/interrupt.ts).
    installSignalHandlers((m) => ui.error(m));
    try {
      await fn(ui, ...args);
    } catch (caught) {
      // Raw fs errors (ENOSPC, EROFS, ...) become messages with the path, cause and fix (exit 2 where the user's path is at fault).
      const err = translateFsError(caught);
      reportError(ui, err, Boolean(opts.debug));
      process.exitCode = exitCodeOf(err);
    }
  };
}

export function reportError(ui: Ui, err: unknown, debug: boolean): void {
  if (err instanceof Error) {
    ui.error(err.message);
    if (debug && err.stack) process.stderr.write(err.stack + '\n');
    else if (!(err instanceof InputError) && !(err instanceof FileSystemError)) process.stderr.write('(run with --debug for the stack trace)\n');
  } else {
    ui.error(String(err));
  }
}

/** Attach a one-line example to a command; `bert-probe --help` lists them. */
export function withExample(cmd: Command, example: string): Command {
  (cmd as Command & { example?: string }).example = example;
  cmd.addHelpText('after', `\nExample:\n  $ ${example}\n`);
  return cmd;
}
