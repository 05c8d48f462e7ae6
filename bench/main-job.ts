/**
 * `npm run bench -- main-job` (issue 9 Must show): the README's main job as a newcomer runs it,
 * `bert-probe structural --data ptb` (13 layers, distance and depth probes, the linear baseline;
 * random-init bert-base where no weights can be had), in a child process with a fresh cache so
 * the ONNX graph and the activation store are built as on a fresh machine. Prints wall time,
 * peak RSS (the child's VmHWM, sampled), the manifest's stage times, and the run's own estimate
 * against the measured time; the load average beside.
 *
 *   BENCH_MAIN_ARGS='--layers 0,6,12'   extra arguments (a shorter run)
 *   BENCH_MAIN_CACHE=DIR                reuse a cache (the store then counts as cached)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../src/util/atomic.js';

const BIN = fileURLToPath(new URL('../../bin/bert-probe', import.meta.url)); // from dist/bench/

/** Peak resident set of a live process (Linux /proc VmHWM), in MiB; null elsewhere. */
function peakRss(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export async function benchMainJob(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'bench-main-job-'));
  const cache = process.env.BENCH_MAIN_CACHE ?? join(root, 'cache');
  const out = join(root, 'run');
  const extra = (process.env.BENCH_MAIN_ARGS ?? '').split(/\s+/).filter(Boolean);
  const args = ['structural', '--data', 'ptb', ...extra, '--out', out];
  console.log(`\nmain-job: bert-probe ${args.join(' ')} (cache ${process.env.BENCH_MAIN_CACHE ? cache : 'fresh'}), load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const t0 = performance.now();
  // The executable itself, as the README runs it (its sh line sets glibc's malloc tunables).
  const child = spawn(BIN, args, { env: { ...process.env, BERT_PROBE_CACHE: cache }, stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    for (const line of d.toString().split('\n')) if (/estimate:|probe:|results:/.test(line)) console.log(`  | ${line.trim()}`);
  });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, peakRss(child.pid!) ?? 0)), 500);
  const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  clearInterval(sampler);
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`main job failed (exit ${code}): ${stderr.split('\n').slice(-5).join(' | ')}`);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { stages: { name: string; startedAt: string; seconds: number }[]; estimate?: { seconds: number; extractSeconds: number; trainSeconds: number } };
  // Wall time from the first start to the last end of the stages named (units train at once).
  const stage = (re: RegExp) => {
    const xs = manifest.stages.filter((s) => re.test(s.name));
    if (!xs.length) return 0;
    const start = Math.min(...xs.map((s) => Date.parse(s.startedAt)));
    const end = Math.max(...xs.map((s) => Date.parse(s.startedAt) + s.seconds * 1000));
    return (end - start) / 1000;
  };
  const extract = stage(/^extract/);
  const train = stage(/^train/);
  console.log(`  wall ${wall.toFixed(1)} s (${(wall / 60).toFixed(1)} min; goal ≤ 12 min): extraction ${extract.toFixed(1)} s, training ${train.toFixed(1)} s, other ${(wall - extract - train).toFixed(1)} s`);
  console.log(`  peak RSS ${peak ? `${peak.toFixed(0)} MiB (goal ≤ 2,560 MiB)` : 'not available (no /proc)'}`);
  if (manifest.estimate) console.log(`  the run's estimate: ${manifest.estimate.seconds} s (extraction ${manifest.estimate.extractSeconds} s, training ${manifest.estimate.trainSeconds} s) = ${(manifest.estimate.seconds / wall).toFixed(2)}× the measured time`);
  console.log(`  load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const file = join(process.cwd(), '.bench', `main-job-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { args, wall, extract, train, peakRssMiB: peak || null, estimate: manifest.estimate ?? null, stages: manifest.stages, loadAverage: loadavg() });
  console.log(`  written: ${file}`);
  if (!process.env.BENCH_MAIN_CACHE && existsSync(root)) rmSync(root, { recursive: true, force: true });
}
