import cliProgress from 'cli-progress';
import ora, { type Ora } from 'ora';

/**
 * Everything the tool tells a person goes through here, on stderr (stdout is for results:
 * `--json` summaries, `embed` JSONL). Spinners and bars only on a TTY; `--quiet` keeps only
 * errors; `--json` implies no decoration on stderr either.
 */
export interface UiOptions {
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

export interface ProgressBar {
  /** Advance by `n` units; `payload` fills named fields of the format (e.g. tokens/s). */
  increment(n?: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface Spinner {
  succeed(text?: string): void;
  fail(text?: string): void;
  update(text: string): void;
}

export class Ui {
  readonly tty: boolean;
  constructor(readonly opts: UiOptions = {}, stream: NodeJS.WriteStream = process.stderr) {
    // A terminal reporting 0 columns (e.g. `script` with no size) makes ora redraw forever.
    this.tty = Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !process.env.CI && process.env.TERM !== 'dumb';
    this.stream = stream;
  }
  private readonly stream: NodeJS.WriteStream;

  get quiet(): boolean {
    return Boolean(this.opts.quiet);
  }

  /** Normal progress messages (hidden by --quiet). */
  info(msg: string): void {
    if (!this.opts.quiet) this.stream.write(msg + '\n');
  }

  /** Warnings are shown unless --quiet; prominent ones are framed on a TTY. */
  warn(msg: string, prominent = false): void {
    if (this.opts.quiet) return;
    if (prominent && this.tty) this.stream.write(`\n\x1b[1;33m!! ${msg}\x1b[0m\n\n`);
    else this.stream.write(`warning: ${msg}\n`);
  }

  error(msg: string): void {
    this.stream.write((this.tty ? '\x1b[31merror:\x1b[0m ' : 'error: ') + msg + '\n');
  }

  debug(msg: string): void {
    if (this.opts.debug) this.stream.write(`debug: ${msg}\n`);
  }

  spinner(text: string): Spinner {
    if (!this.tty || this.opts.quiet) {
      if (!this.opts.quiet) this.info(text + ' ...');
      return {
        succeed: (t) => t && this.info(t),
        fail: (t) => t && this.error(t),
        update: () => {},
      };
    }
    const s: Ora = ora({ text, stream: this.stream }).start();
    return {
      succeed: (t) => s.succeed(t),
      fail: (t) => s.fail(t),
      update: (t) => {
        s.text = t;
      },
    };
  }

  /**
   * Off a TTY (logs, CI, pipelines) a bar becomes a plain line on stderr at every 10% and at
   * the end, so a long stage in a batch job still shows it is alive, without control codes.
   */
  private plainProgress(label: string, total: number): ProgressBar {
    let value = 0;
    let lastTenth = 0;
    const started = Date.now();
    const line = () => {
      const secs = (Date.now() - started) / 1000;
      this.stream.write(`${label}: ${value}/${total} (${Math.floor((100 * value) / Math.max(total, 1))}%, ${secs.toFixed(0)} s)\n`);
    };
    return {
      increment: (n = 1) => {
        value += n;
        const tenth = Math.floor((10 * value) / Math.max(total, 1));
        if (tenth > lastTenth && value < total) {
          lastTenth = tenth;
          line();
        }
      },
      setTotal: (t) => {
        total = t;
      },
      stop: () => {
        if (value > 0) line();
      },
    };
  }

  /**
   * A progress bar. `format` may use cli-progress tokens ({bar} {value} {total} {eta_formatted})
   * and payload fields. Off a TTY see plainProgress.
   */
  bar(label: string, total: number, format = '{bar} {value}/{total} {unit} | {rate} | ETA {eta_formatted}'): ProgressBar {
    if (this.opts.quiet) return { increment: () => {}, setTotal: () => {}, stop: () => {} };
    if (!this.tty) return this.plainProgress(label, total);
    const bar = new cliProgress.SingleBar(
      { format: `${label} ${format}`, stream: this.stream, hideCursor: true, etaBuffer: 50, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { unit: '', rate: '' });
    return {
      increment: (n = 1, payload) => bar.increment(n, payload),
      setTotal: (t) => bar.setTotal(t),
      stop: () => bar.stop(),
    };
  }
}
