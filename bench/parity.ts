/**
 * `npm run bench -- parity` (issue 9 Must show: parity with the authors' code on the same stored
 * features is kept). Our structural run on the PTB sample (random-init bert-base, layers 0/6/12;
 * or the run named by BENCH_PARITY_RUN, e.g. a main job's) and Hewitt & Manning's probes trained
 * as structural-probes trains them, in PyTorch (bench/peers/structural_probes.py), on the word
 * vectors of the same activation store and the same train/dev/test sentences, scored by the
 * independent reporter reimplementation (test/fixtures/structural/reference.py). Prints each
 * metric side by side and the difference; the goal: distance-probe metrics within 0.005, depth
 * within the seed spread (the authors' code moves root accuracy by ±0.02 between seeds).
 *
 *   BENCH_PARITY_RUN=DIR       a finished `bert-probe structural --data ptb` run to compare with
 *   BENCH_PARITY_LAYERS=0,6,12 layers (of those the run has)
 *   BENCH_PARITY_PEER_SEED=N   the PyTorch side's seed (default: the run's --seed); another seed shows their own spread
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { loadSplits } from '../src/corpus/load.js';
import { structuralFamily } from '../src/probes/structural-family.js';
import { idsHash, selectSentences } from '../src/probes/runner.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { Ui } from '../src/util/ui.js';

const BIN = fileURLToPath(new URL('../../bin/bert-probe', import.meta.url)); // from dist/bench/
const PEER = fileURLToPath(new URL('../../bench/peers/structural_probes.py', import.meta.url));
const SPLITS = ['train', 'dev', 'test'] as const;

interface PeerRow {
  layer: string;
  kind: 'distance' | 'depth';
  epochs: number;
  best_dev_loss: number;
  uuas?: number;
  dspr?: number;
  root_acc?: number;
  nspr?: number;
}

function runPeer(spec: Record<string, unknown>, dir: string, name: string): Promise<PeerRow[]> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(spec));
  return new Promise((resolve, reject) => {
    const child = spawn('python3', [PEER, file], { env: { ...process.env, OMP_NUM_THREADS: String(spec.threads) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.startsWith('{"progress"')) console.log(`  | PyTorch ${JSON.stringify((JSON.parse(line) as { progress: unknown }).progress)}`);
    });
    child.on('exit', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').pop()!) as { results: PeerRow[] }).results) : reject(new Error(`structural_probes.py failed (exit ${code}): ${err.split('\n').slice(-4).join(' | ')}`))));
  });
}

export async function benchParity(): Promise<void> {
  if (spawnSync('python3', ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status !== 0) {
    console.log('\nparity: skipped (python3 with torch and numpy is needed; pip install --no-deps the CPU wheel in $PIP_FIND_LINKS)');
    return;
  }
  const layers = (process.env.BENCH_PARITY_LAYERS ?? '0,6,12').split(',').map(Number);
  const tmp = mkdtempSync(join(tmpdir(), 'bench-parity-'));
  try {
    let run = process.env.BENCH_PARITY_RUN;
    console.log(`\nparity: structural probes, ours against structural-probes' regimen in PyTorch on the same stored features, layers ${layers.join('/')}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    if (!run) {
      run = join(tmp, 'run');
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [BIN, 'structural', '--data', 'ptb', '--layers', layers.join(','), '--out', run, '--quiet'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      if (r.status !== 0) throw new Error(`our structural run failed (exit ${r.status}): ${r.stderr}`);
      console.log(`  ours: bert-probe structural --data ptb --layers ${layers.join(',')} in ${((performance.now() - t0) / 1000).toFixed(0)} s (extraction cached when a run before built the store)`);
    }
    const manifest = JSON.parse(readFileSync(join(run, 'manifest.json'), 'utf8')) as { data: { splits: Record<string, { idsSha256: string }> }; activations: { sources: Record<string, { dirs: string[]; dtype: string }> }; seeds: { probe: number }; probe: { maxEpochs: number; rank: number } };
    const rows = parse(readFileSync(join(run, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    // The same sentences as the run: the family's selection of each split, checked by id hash.
    const raw = await loadSplits('ptb', { offline: true });
    const ui = new Ui({ quiet: true });
    const splits = Object.fromEntries(
      SPLITS.map((k) => {
        const kept = selectSentences(structuralFamily, raw[k], ui).kept;
        if (idsHash(kept) !== manifest.data.splits[k]!.idsSha256) throw new Error(`parity: the ${k} sentences differ from the run's (id hash)`);
        const source = manifest.activations.sources[k]!;
        if (source.dirs.length !== 1 || source.dtype !== 'float32') throw new Error(`parity: the ${k} store must be one float32 folder`);
        return [k, { store: source.dirs[0], sentences: kept.map((s) => ({ heads: s.heads, xpos: s.xpos ?? null, upos: s.upos ?? null })) }];
      }),
    );
    const spec = { layers, splits, rank: manifest.probe.rank, seed: Number(process.env.BENCH_PARITY_PEER_SEED ?? manifest.seeds.probe), max_epochs: manifest.probe.maxEpochs, batch_size: 20, threads: 1 };
    // distance and depth in two processes, a core each
    const t0 = performance.now();
    const peer = (await Promise.all([runPeer({ ...spec, kinds: ['distance'] }, tmp, 'distance'), runPeer({ ...spec, kinds: ['depth'] }, tmp, 'depth')])).flat();
    console.log(`  PyTorch (torch ${spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim()}): ${peer.length} probes in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const out: Record<string, unknown>[] = [];
    let worstDistance = 0;
    let worstDepth = 0;
    console.log('  layer     probe     metric     ours     theirs   |diff|   epochs ours/theirs');
    for (const p of peer) {
      const ours = rows.find((r) => r.layer === p.layer && r.probe === p.kind && r.model !== 'baseline');
      if (!ours) throw new Error(`parity: the run has no ${p.layer} ${p.kind} row`);
      for (const m of p.kind === 'distance' ? (['uuas', 'dspr'] as const) : (['root_acc', 'nspr'] as const)) {
        const a = Number(ours[m]);
        const b = p[m]!;
        const d = Math.abs(a - b);
        if (p.kind === 'distance') worstDistance = Math.max(worstDistance, d);
        else worstDepth = Math.max(worstDepth, d);
        console.log(`  ${p.layer.padEnd(9)} ${p.kind.padEnd(9)} ${m.padEnd(9)} ${a.toFixed(4)}   ${b.toFixed(4)}   ${d.toFixed(4)}   ${ours.epochs}/${p.epochs}`);
        out.push({ layer: p.layer, probe: p.kind, metric: m, ours: a, theirs: b, diff: d, epochsOurs: Number(ours.epochs), epochsTheirs: p.epochs });
      }
    }
    console.log(`  largest difference: distance ${worstDistance.toFixed(4)} (goal ≤ 0.005 ${worstDistance <= 0.005 ? 'met' : 'NOT met'}), depth ${worstDepth.toFixed(4)} (the authors' seed spread: ±0.02)`);
    console.log(`  load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const file = join(process.cwd(), '.bench', `parity-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeJsonAtomic(file, { run, layers, rows: out, worstDistance, worstDepth, loadAverage: loadavg() });
    console.log(`  written: ${file}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
