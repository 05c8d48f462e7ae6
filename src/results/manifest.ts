import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * manifest.json: everything needed to reproduce a run a year later — the command line, the
 * model and data identities (ids, resolved paths, sha256), the seed, engine and backend,
 * versions of bert-probe, Node and the packages that shape the numbers, wall-clock times and
 * seconds per stage. The ResultSet keeps one of these up to date on disk during the run.
 */
export interface StageRecord {
  name: string;
  startedAt: string;
  seconds: number | null;
  status: 'running' | 'ok' | 'failed' | 'interrupted';
  error?: string;
}

export interface FigureRecord {
  name: string;
  file: string;
  caption?: string;
}

export interface Manifest {
  tool: 'bert-probe';
  manifestVersion: 1;
  command: string;
  argv: string[];
  /** The command line to paste into a shell to run this again. */
  reproduce: string;
  cwd: string;
  /**
   * running while the run is going (or was killed with SIGKILL), finished, failed (a stage or
   * the command failed), interrupted (SIGINT/SIGTERM: `interrupted` says the signal and stage),
   * unfinished (exited without finishing).
   */
  status: 'running' | 'finished' | 'failed' | 'interrupted' | 'unfinished';
  startedAt: string;
  finishedAt: string | null;
  seconds: number | null;
  seed: number | null;
  model: Record<string, unknown>;
  data: Record<string, unknown>;
  stages: StageRecord[];
  files: string[];
  figures: FigureRecord[];
  columns: string[] | null;
  columnDescriptions?: Record<string, string>;
  versions: Versions;
  platform: { os: string; release: string; arch: string; cpus: number };
  [extra: string]: unknown;
}

export interface Versions {
  bertProbe: string;
  gitCommit?: string;
  node: string;
  packages: Record<string, string>;
}

/** Packages whose versions can change the numbers or the files a run writes. */
export const KEY_PACKAGES = [
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'onnxruntime-node',
  '@huggingface/tokenizers',
  '@huggingface/hub',
  'vega',
  'vega-lite',
  'csv-stringify',
];

/** The bert-probe checkout or install this module belongs to (works from src/ and dist/src/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'bert-probe') return dir;
      } catch {
        /* keep looking upward */
      }
    }
    const up = dirname(dir);
    if (up === dir) return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
    dir = up;
  }
}

function readVersion(pj: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(pj, 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** Version of an installed package, read from its package.json (node_modules, walking upward). */
export function installedVersion(pkg: string, from = packageRoot()): string | undefined {
  let dir = from;
  for (;;) {
    const v = readVersion(join(dir, 'node_modules', pkg, 'package.json'));
    if (v) return v;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** HEAD commit of a git checkout, read from .git without running git. */
export function gitCommit(root: string): string | undefined {
  try {
    const head = readFileSync(join(root, '.git', 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const m = /^ref: (.+)$/.exec(head);
    if (!m) return undefined;
    const refFile = join(root, '.git', m[1]);
    if (existsSync(refFile)) return readFileSync(refFile, 'utf8').trim();
    const packed = readFileSync(join(root, '.git', 'packed-refs'), 'utf8');
    for (const line of packed.split('\n')) {
      const [sha, ref] = line.split(' ');
      if (ref === m[1]) return sha;
    }
  } catch {
    /* not a git checkout */
  }
  return undefined;
}

let cachedVersions: Versions | undefined;

export function collectVersions(): Versions {
  if (cachedVersions) return cachedVersions;
  const root = packageRoot();
  const packages: Record<string, string> = {};
  for (const p of KEY_PACKAGES) {
    const v = installedVersion(p, root);
    if (v) packages[p] = v;
  }
  cachedVersions = {
    bertProbe: readVersion(join(root, 'package.json')) ?? 'unknown',
    gitCommit: gitCommit(root),
    node: process.versions.node,
    packages,
  };
  return cachedVersions;
}

/** POSIX shell quoting, so `reproduce` can be pasted as is. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command to run again: `bert-probe` and the user's arguments (process.argv minus node and
 * the script path).
 */
export function reproduceCommand(argv: readonly string[]): string {
  const args = argv.length >= 2 && /node(\.exe)?$|bert-probe$|\.js$|\.ts$/.test(argv[0]) ? argv.slice(2) : argv;
  return ['bert-probe', ...args].map((a, i) => (i === 0 ? a : shellQuote(a))).join(' ');
}

export function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
}
