import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_BAD_INPUT } from '../util/errors.js';
import { COMMANDS } from './commands.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('bert-probe')
    .description('Probe what BERT-family models learn: structural probes, attention, layers, senses, similarity.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  for (const register of COMMANDS) register(program);
  const examples = program.commands
    .map((c) => [c.name(), (c as Command & { example?: string }).example] as const)
    .filter(([, ex]) => ex)
    .map(([, ex]) => `  $ ${ex}`);
  if (examples.length) program.addHelpText('after', `\nExamples:\n${examples.join('\n')}\n`);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // Output piped into a reader that stops early (`bert-probe --help | head`): stop quietly, as
  // Unix tools do, instead of crashing on EPIPE.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(0);
    });
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors exit 2 (commander already printed the message)
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
      return;
    }
    throw err;
  }
}
