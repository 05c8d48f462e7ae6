import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * `npm run bench -- layers` (issue 10): a full `layers --task pos` run (single, mix and
 * cumulative over all 13 hidden states) of a random model of bert-base shape on EWT, from a
 * complete activation store: a first run fills the store (piece level, 13 layers) and is timed
 * apart; the second, timed run trains and scores every probe. Then one epoch of Tenney's MLP
 * beside PyTorch on the same features, by the trainer bench's (b) (`bench/trainer.ts`,
 * BENCH_TRAINER_TASKS=mlp), as a ratio.
 *
 *   BENCH_LAYERS_SENTENCES (first N sentences of each split, default 500),
 *   BENCH_LAYERS_STEPS (--max-steps per probe, default 100; the command's default is 1,500)
 */
const SENTENCES = Number(process.env.BENCH_LAYERS_SENTENCES ?? 500);
const STEPS = Number(process.env.BENCH_LAYERS_STEPS ?? 100);

export async function benchLayers(): Promise<unknown> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const bin = join(root, 'bin', 'bert-probe');
  const home = mkdtempSync(join(tmpdir(), 'bert-probe-bench-layers-'));
  const env = { ...process.env, BERT_PROBE_DATA_MIRROR: process.env.BERT_PROBE_DATA_MIRROR ?? join(root, '..', 'shared', 'data'), BERT_PROBE_CACHE: join(home, 'cache') };
  const common = ['layers', '--task', 'pos', '--model', 'random', '--offline', '--limit', String(SENTENCES), '--quiet'];
  try {
    console.log(`\nlayers: pos on ewt (first ${SENTENCES} sentences per split), random bert-base shape, all modes over 13 layers, --max-steps ${STEPS} (load average ${loadavg()[0]!.toFixed(1)})`);
    const time = (args: string[]) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { seconds: (performance.now() - t0) / 1000, status: r.status, stderr: r.stderr };
    };
    // 1. fill the store: one mix probe of one step requests every layer at piece level
    const fill = time([...common, '--mode', 'mix', '--max-steps', '1', '--out', join(home, 'fill')]);
    if (fill.status !== 0) {
      console.log(`  store fill failed (exit ${fill.status}): ${fill.stderr.trim().split('\n').pop()}`);
      return null;
    }
    console.log(`  extraction into the store (and one 1-step mix probe): ${fill.seconds.toFixed(1)} s`);
    // 2. the full run from the complete store
    const out = join(home, 'run');
    const run = time([...common, '--max-steps', String(STEPS), '--out', out]);
    if (run.status !== 0) {
      console.log(`  run failed (exit ${run.status}): ${run.stderr.trim().split('\n').pop()}`);
      return null;
    }
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const stages = (manifest.stages as { name: string; seconds: number }[]) ?? [];
    const train = stages.filter((s) => s.name.startsWith('train')).reduce((a, s) => a + s.seconds, 0);
    const probes = stages.filter((s) => s.name.startsWith('train')).length;
    console.log(`  full run from the complete store: ${run.seconds.toFixed(1)} s wall (${probes} units trained in ${train.toFixed(1)} s; no forward pass) (load average ${loadavg()[0]!.toFixed(1)})`);
    const result: Record<string, unknown> = { sentences: SENTENCES, steps: STEPS, fillSeconds: fill.seconds, runSeconds: run.seconds, trainSeconds: train, units: probes, loadavg: loadavg() };
    // 3. one MLP epoch beside PyTorch (the trainer bench's (b))
    const trainerBench = join(root, 'dist', 'bench', 'trainer.js');
    if (existsSync(trainerBench)) {
      const t = spawnSync(process.execPath, [join(root, 'dist', 'bench', 'index.js'), 'trainer'], { env: { ...env, BENCH_TRAINER_TASKS: 'mlp' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      process.stdout.write(t.stdout.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n'));
    } else console.log('  MLP epoch beside PyTorch: the trainer bench (bench/trainer.ts) is not built here');
    const file = join(root, '.bench', `layers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeJsonAtomic(file, { bench: 'layers', date: new Date().toISOString(), ...result });
    console.log(`  written: ${file}`);
    return result;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
