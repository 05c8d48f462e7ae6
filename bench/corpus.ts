import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import type { Corpus } from '../src/corpus/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Corpus reading benchmark (issue 3): wall time to read and validate a registry split (sha256
 * check, UTF-8 decode, parse, head/cycle checks) and the heap it keeps, for EWT dev and train
 * (12,544 sentences; target < 2 s, memory proportional to the corpus: similar bytes per word for
 * both sizes), the PTB sample with head-rule conversion and all of SemCor. Reads through
 * BERT_PROBE_DATA_MIRROR (default ../shared/data). Each read runs 3 times; the median is reported.
 * Needs `node --expose-gc` (npm run bench does that) for the retained-heap figures.
 *
 *   npm run bench corpus
 */
const CASES = ['ewt:dev', 'ewt:train', 'ptb:train', 'semcor:all'];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** One read in its own frame, so nothing of an earlier read is still referenced when we measure. */
async function readOnce(spec: string): Promise<{ ms: number; cpuMs: number; kept: number; sentences: number; words: number }> {
  gc();
  const before = process.memoryUsage().heapUsed;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const c: Corpus = await loadCorpus(spec);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  gc();
  const kept = process.memoryUsage().heapUsed - before; // the corpus is still referenced below
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, kept, sentences: c.sentences.length, words: c.sentences.reduce((a, s) => a + s.words.length, 0) };
}

export async function benchCorpus(): Promise<unknown> {
  const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
  process.env.BERT_PROBE_DATA_MIRROR ??= join(root, '..', 'shared', 'data');
  const rows: Record<string, unknown>[] = [];
  for (const spec of CASES) {
    const times: number[] = [];
    const cpus: number[] = [];
    let kept = 0;
    let sentences = 0;
    let words = 0;
    for (let run = 0; run < 3; run++) {
      const r = await readOnce(spec);
      times.push(r.ms);
      cpus.push(r.cpuMs);
      kept = r.kept;
      sentences = r.sentences;
      words = r.words;
    }
    times.sort((a, b) => a - b);
    cpus.sort((a, b) => a - b);
    const row = {
      data: spec,
      sentences,
      words,
      medianMs: Math.round(times[1]!),
      firstMs: Math.round(Math.max(...times)),
      medianCpuMs: Math.round(cpus[1]!),
      retainedMB: Math.round((kept / 2 ** 20) * 10) / 10,
      bytesPerWord: Math.round(kept / words),
    };
    rows.push(row);
    process.stdout.write(`corpus  ${spec.padEnd(11)} ${String(row.sentences).padStart(6)} sentences ${String(words).padStart(7)} words  median ${String(row.medianMs).padStart(5)} ms wall, ${String(row.medianCpuMs).padStart(5)} ms CPU (slowest ${row.firstMs} ms)  heap kept ${row.retainedMB} MB = ${row.bytesPerWord} B/word\n`);
  }
  const ewt = rows.find((r) => r.data === 'ewt:train') as { medianMs: number; medianCpuMs: number };
  // wall time suffers when other processes share the cores; CPU time is what the reader costs
  process.stdout.write(`corpus  target: ewt:train < 2000 ms → wall ${ewt.medianMs < 2000 ? 'met' : 'NOT met'}, CPU ${ewt.medianCpuMs < 2000 ? 'met' : 'NOT met'} (load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)})\n`);
  writeJsonAtomic(join(root, '.bench', 'corpus.json'), { node: process.version, when: new Date().toISOString(), gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function', rows });
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchCorpus();
