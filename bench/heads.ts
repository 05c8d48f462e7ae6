import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { openStore } from '../src/extract/store.js';
import { packagedBertVocab, tokenizerFromVocab } from '../src/model/tokenizer.js';
import { headsPass } from '../src/probes/heads-compute.js';
import { columnStats, fitSoftmaxRegression, predictLogits, standardize } from '../src/probes/softmax-regression.js';
import { writeJsonAtomic } from '../src/util/atomic.js';
import { mulberry32 } from '../src/util/random.js';
import { writeAttentionStore } from '../test/heads-planted.js';

/**
 * `bert-probe heads` and the `relations` binary probe at bert-base shape (issue 11).
 *
 * heads: EWT dev (through the data mirror: BERT_PROBE_DATA_MIRROR, default ../shared/data),
 * tokenized with the bert-base-uncased vocab, a complete store of piece-level attention for 12
 * layers × 12 heads written first (seeded random rows: timing does not depend on the values),
 * then one heads pass over it — surface statistics, head accuracy for 288 predictors + 6 offsets,
 * JS distances over 100 sentences and MDS. Baseline in the same run: reading every attention
 * tensor of the store once (the I/O floor of the pass).
 *
 * relations: the binary probe on 100,000 pairs × 144 standardised features (seeded, with signal in
 * 4 features), the default λ grid of 5 fits with early stopping. Baseline in the same run: one
 * prediction pass over the 100,000 pairs.
 *
 *   npm run bench heads
 *   BENCH_HEADS_LIMIT=200 (EWT dev sentences)  BENCH_HEADS_PAIRS=20000  for a quick look
 */
const LIMIT = process.env.BENCH_HEADS_LIMIT ? Number(process.env.BENCH_HEADS_LIMIT) : undefined;
const PAIRS = Number(process.env.BENCH_HEADS_PAIRS ?? 100_000);
const L = 12;
const H = 12;

export async function benchHeads(): Promise<void> {
  const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
  process.env.BERT_PROBE_DATA_MIRROR ??= join(root, '..', 'shared', 'data');
  const corpus = await loadCorpus('ewt:dev', { offline: true });
  const sentences = LIMIT ? corpus.sentences.slice(0, LIMIT) : corpus.sentences;
  const tokenizer = tokenizerFromVocab(packagedBertVocab());
  const dir = mkdtempSync(join(tmpdir(), 'bench-heads-'));
  const results: Record<string, unknown> = { loadAverage: loadavg()[0] };
  try {
    const rand = mulberry32(42);
    let t0 = performance.now();
    writeAttentionStore(dir, { id: corpus.id, sha256: corpus.sha256, sentences }, tokenizer, { layers: L, heads: H, hiddenSize: 768, model: 'bench-bert-base-shape', maxPositions: 512, raw: true, word: false }, (_s, _l, P) => {
      const a = new Float32Array(H * P * P);
      for (let r = 0; r < H * P; r++) {
        let sum = 0;
        for (let c = 0; c < P; c++) sum += a[r * P + c] = rand() ** 4;
        for (let c = 0; c < P; c++) a[r * P + c]! /= sum;
      }
      return a;
    });
    const writeS = (performance.now() - t0) / 1000;
    const store = openStore([dir]);
    const reader = {
      numHeads: store.numHeads,
      attentionLayers: store.attentionLayers,
      rawAttentionLayers: store.rawAttentionLayers,
      hasAttention: (s: number) => store.hasAttention(s),
      readAttention: (l: number, s: number) => store.readAttention(l, s),
      readRawAttention: (l: number, s: number) => store.readRawAttention(l, s),
    };
    const pieces = sentences.reduce((a, s) => a + tokenizer.encodeWords(s.words).tokens.length, 0);
    console.log(`\nheads: EWT dev ${sentences.length} sentences (${pieces} pieces), ${L}×${H} heads, store written in ${writeS.toFixed(1)} s (load average ${loadavg()[0]!.toFixed(1)})`);
    t0 = performance.now();
    let values = 0;
    for (let s = 0; s < sentences.length; s++) {
      if (!store.hasAttention(s)) continue;
      for (let l = 1; l <= L; l++) values += (await store.readRawAttention(l, s)).data.length;
    }
    const readS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const pass = await headsPass(sentences, reader, tokenizer, { layers: Array.from({ length: L }, (_, i) => i + 1), fromPieces: 'mean', distanceSentences: 100, seed: 1 });
    const passS = (performance.now() - t0) / 1000;
    console.log(`  read every attention tensor once (baseline): ${readS.toFixed(2)} s (${(values / 1e6).toFixed(0)} M values)`);
    console.log(`  heads pass (stats + 294 predictors + JS over ${pass.distances?.sentences ?? 0} sentences + MDS): ${passS.toFixed(2)} s = ${(passS / readS).toFixed(1)}× the read baseline, ${(pass.sentencesScored / passS).toFixed(0)} sentences/s (load average ${loadavg()[0]!.toFixed(1)})`);
    Object.assign(results, { heads: { sentences: sentences.length, pieces, writeSeconds: writeS, readSeconds: readS, passSeconds: passS, ratioToRead: passS / readS } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // relations: binary probe, PAIRS × 144.
  const F = L * H;
  const rand = mulberry32(7);
  const make = (n: number) => {
    const x = new Float32Array(n * F);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = rand() < 0.5 ? 1 : 0;
      for (let f = 0; f < F; f++) x[i * F + f] = rand() * 0.1 + (f % 37 === 3 && y[i] ? 0.05 : 0);
    }
    return { x, y };
  };
  const train = make(PAIRS);
  const dev = make(Math.round(PAIRS / 10));
  const stats = columnStats(train.x, F);
  standardize(train.x, F, stats);
  standardize(dev.x, F, stats);
  let epochs = 0;
  let t0 = performance.now();
  const fit = await fitSoftmaxRegression({ train, dev, features: F, classes: 2, seed: 1, onFit: (_l2, _acc, e) => (epochs += e) });
  const fitS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  await predictLogits(fit.probe, fit.params, train, F, 2);
  const predS = (performance.now() - t0) / 1000;
  await fit.probe.dispose();
  console.log(`\nrelations: binary probe, ${PAIRS} pairs × ${F} features, λ grid of ${fit.grid.length}: ${fitS.toFixed(1)} s for ${epochs} epochs (${(fitS / epochs).toFixed(2)} s/epoch = ${(fitS / epochs / predS).toFixed(1)}× one prediction pass of ${predS.toFixed(2)} s), dev accuracy ${fit.devAccuracy.toFixed(3)} (load average ${loadavg()[0]!.toFixed(1)})`);
  Object.assign(results, { relations: { pairs: PAIRS, features: F, fitSeconds: fitS, epochs, secondsPerEpoch: fitS / epochs, predictSeconds: predS, devAccuracy: fit.devAccuracy } });
  writeJsonAtomic(join(root, '.bench', 'heads.json'), { node: process.version, when: new Date().toISOString(), ...results });
}
