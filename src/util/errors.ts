/**
 * Errors users can act on. DESIGN.md: exit 0 ok, 1 runtime failure, 2 bad usage or bad input.
 * An InputError names where (file, line, column), what was expected, what was found and how
 * to fix it; the CLI prints it without a stack trace unless --debug.
 */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_BAD_INPUT = 2;

export interface InputErrorDetails {
  file?: string;
  line?: number;
  column?: number;
  /** Byte offset, for binary formats and invalid UTF-8. */
  offset?: number;
  expected?: string;
  found?: string;
  fix?: string;
}

/** Bad usage or bad input: exit code 2. */
export class InputError extends Error {
  readonly exitCode = EXIT_BAD_INPUT;
  constructor(
    readonly summary: string,
    readonly details: InputErrorDetails = {},
  ) {
    super(formatInputError(summary, details));
    this.name = 'InputError';
  }
}

/** A failure while running (not the user's input): exit code 1. */
export class RuntimeFailure extends Error {
  readonly exitCode = EXIT_RUNTIME;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RuntimeFailure';
  }
}

export function formatInputError(summary: string, d: InputErrorDetails): string {
  let where = '';
  if (d.file) {
    where = d.file;
    if (d.line !== undefined) where += `:${d.line}`;
    if (d.column !== undefined) where += `:${d.column}`;
    if (d.offset !== undefined) where += ` (byte ${d.offset})`;
    where += ': ';
  }
  const lines = [`${where}${summary}`];
  if (d.expected !== undefined) lines.push(`  expected: ${d.expected}`);
  if (d.found !== undefined) lines.push(`  found:    ${d.found}`);
  if (d.fix !== undefined) lines.push(`  fix:      ${d.fix}`);
  return lines.join('\n');
}

export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof err.exitCode === 'number') {
    return err.exitCode;
  }
  return EXIT_RUNTIME;
}
