import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCorpus } from '../src/corpus/load.js';
import { padBatch } from '../src/extract/batching.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { readSafetensors } from '../src/model/safetensors.js';
import type { ArrayTensor, ForwardBatch, LoadedModel } from '../src/model/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * `npm run bench -- precision` (issue 14): what `--precision int8` costs in fidelity. For the
 * reference checkpoints in ../shared/fixtures (their reference batch) and for a random model of
 * bert-base-uncased shape (the first 64 sentences of EWT dev, batches of 16): max and mean
 * absolute error of every hidden state (1..L; the embeddings are not quantised) and every
 * attention map, int8 against our fp32, over real tokens only (attention: real query and key).
 * For the fixtures also fp32 against the float64 reference, for scale. Prints a Markdown table
 * (docs/precision.md holds one) and writes .bench/precision-<time>.json.
 */
interface Stat {
  max: number;
  mean: number;
}

interface Row {
  model: string;
  comparison: string;
  hidden: Stat;
  attention: Stat;
  tokens: number;
}

function errors(a: ArrayTensor, b: ArrayTensor, mask: Int32Array, T: number, attention: boolean, acc: { max: number; sum: number; n: number }): void {
  const B = a.shape[0]!;
  if (!attention) {
    const per = a.data.length / (B * T);
    for (let i = 0; i < B * T; i++) {
      if (!mask[i]) continue;
      for (let j = 0; j < per; j++) {
        const d = Math.abs(a.data[i * per + j]! - b.data[i * per + j]!);
        if (d > acc.max) acc.max = d;
        acc.sum += d;
        acc.n++;
      }
    }
    return;
  }
  const heads = a.shape[1]!;
  for (let bi = 0; bi < B; bi++)
    for (let h = 0; h < heads; h++)
      for (let q = 0; q < T; q++) {
        if (!mask[bi * T + q]) continue;
        for (let k = 0; k < T; k++) {
          if (!mask[bi * T + k]) continue;
          const idx = ((bi * heads + h) * T + q) * T + k;
          const d = Math.abs(a.data[idx]! - b.data[idx]!);
          if (d > acc.max) acc.max = d;
          acc.sum += d;
          acc.n++;
        }
      }
}

type Source = (b: ForwardBatch) => Promise<{ hiddenStates: (ArrayTensor | undefined)[]; attentions: (ArrayTensor | undefined)[] }>;

async function compareOn(model: string, comparison: string, batches: ForwardBatch[], L: number, x: Source, y: Source): Promise<Row> {
  const h = { max: 0, sum: 0, n: 0 }, a = { max: 0, sum: 0, n: 0 };
  let tokens = 0;
  for (const batch of batches) {
    const [ox, oy] = [await x(batch), await y(batch)];
    for (let i = 1; i <= L; i++) errors(ox.hiddenStates[i]!, oy.hiddenStates[i]!, batch.attentionMask, batch.seqLen, false, h);
    for (let l = 0; l < L; l++) errors(ox.attentions[l]!, oy.attentions[l]!, batch.attentionMask, batch.seqLen, true, a);
    tokens += batch.attentionMask.reduce((s, v) => s + v, 0);
  }
  return { model, comparison, hidden: { max: h.max, mean: h.sum / h.n }, attention: { max: a.max, mean: a.sum / a.n }, tokens };
}

async function engines(model: LoadedModel) {
  return { fp32: await OnnxEngine.create(model), int8: await OnnxEngine.create(model, { precision: 'int8' }) };
}

export async function benchPrecision(): Promise<Row[]> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const shared = process.env.BERT_PROBE_SHARED ?? join(root, '..', 'shared');
  const rows: Row[] = [];
  console.log('\nprecision: --precision int8 against fp32 (max / mean absolute error over real tokens)');
  const refFile = join(shared, 'fixtures', 'tiny-bert-reference.safetensors');
  if (existsSync(refFile)) {
    const ref = readSafetensors(refFile).tensors;
    const ids = ref.get('input_ids')!;
    const [B, T] = ids.shape as [number, number];
    const batch: ForwardBatch = { batchSize: B, seqLen: T, inputIds: Int32Array.from(ids.data), attentionMask: Int32Array.from(ref.get('attention_mask')!.data), tokenTypeIds: Int32Array.from(ref.get('token_type_ids')!.data) };
    for (const name of ['tiny-bert', 'tiny-bert-model-only-f16']) {
      const model = await loadModel(join(shared, 'fixtures', name), { offline: true });
      const own = name === 'tiny-bert' ? ref : readSafetensors(join(shared, 'fixtures', `${name}-reference.safetensors`)).tensors;
      const L = model.config.numHiddenLayers;
      const e = await engines(model);
      const reference: Source = async () => ({
        hiddenStates: [...Array(L + 1).keys()].map((i) => own.get(`hidden_states.${i}`)),
        attentions: [...Array(L).keys()].map((l) => own.get(`attentions.${l}`) ?? ref.get(`attentions.${l}`)),
      });
      rows.push(await compareOn(name, 'int8 vs fp32', [batch], L, (b) => e.int8.forward(b), (b) => e.fp32.forward(b)));
      if (own.has('attentions.0')) {
        rows.push(await compareOn(name, 'fp32 vs float64 reference', [batch], L, (b) => e.fp32.forward(b), reference));
        rows.push(await compareOn(name, 'int8 vs float64 reference', [batch], L, (b) => e.int8.forward(b), reference));
      }
      await e.fp32.dispose();
      await e.int8.dispose();
    }
  } else {
    console.log(`  ${refFile} not found (set BERT_PROBE_SHARED): fixtures skipped`);
  }
  try {
    const model = await loadModel('random', { seed: 42, offline: true });
    const corpus = await loadCorpus('ewt:dev', { offline: true });
    const seqs = corpus.sentences.slice(0, 64).map((s) => model.tokenizer.encodeWords(s.words).ids);
    const batches: ForwardBatch[] = [];
    for (let i = 0; i < seqs.length; i += 16) batches.push(padBatch(seqs.slice(i, i + 16), model.tokenizer.padId));
    const e = await engines(model);
    rows.push(await compareOn('random bert-base shape, EWT dev 64', 'int8 vs fp32', batches, model.config.numHiddenLayers, (b) => e.int8.forward(b), (b) => e.fp32.forward(b)));
    await e.fp32.dispose();
    await e.int8.dispose();
  } catch (err) {
    console.log(`  bert-base shape on EWT skipped: ${(err as Error).message}`);
  }
  const f = (x: number) => x.toExponential(2);
  console.log('\n| model | comparison | hidden max | hidden mean | attention max | attention mean | real tokens |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.model} | ${r.comparison} | ${f(r.hidden.max)} | ${f(r.hidden.mean)} | ${f(r.attention.max)} | ${f(r.attention.mean)} | ${r.tokens} |`);
  const file = join(root, '.bench', `precision-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, { bench: 'precision', date: new Date().toISOString(), rows });
  console.log(`\n  written: ${file}`);
  return rows;
}
