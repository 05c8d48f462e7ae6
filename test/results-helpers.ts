import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Helpers for the results tests: run test/results-child.ts (or its dist/ build) in a child process. */
const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const childScript = join(here, `results-child${ext}`);

/** The loader flags this process runs under (tsx's, when the tests run from source). */
function loaderArgs(): string[] {
  const out: string[] = [];
  const a = process.execArgv;
  for (let i = 0; i < a.length; i++) {
    if (['--require', '--import', '--loader', '--experimental-loader', '-r'].includes(a[i]) && i + 1 < a.length) out.push(a[i], a[++i]);
    else if (/^--(require|import|loader|experimental-loader)=/.test(a[i])) out.push(a[i]);
  }
  return out;
}

export function runChildSync(mode: string, out: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...loaderArgs(), childScript, mode, out], { encoding: 'utf8', env: { ...process.env, CI: '1' } });
}

export function startChild(mode: string, out: string): ChildProcess {
  return spawn(process.execPath, [...loaderArgs(), childScript, mode, out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
}

/** Resolve when the child's stderr shows `marker`; reject if it exits first. */
export function waitFor(child: ChildProcess, marker: string, timeoutMs = 60000): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${marker}; stderr: ${err}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes(marker)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}) before ${marker}; stderr: ${err}`));
    });
  });
}

export function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
