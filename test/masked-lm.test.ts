/**
 * Masked-LM probes (issue 13): fill-mask and pseudo-log-likelihood on the fixture model, against
 * computations written out here — each masked copy run on its own, the log-softmax taken by hand
 * in float64 — and the CLI end to end.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { padBatch } from '../src/extract/batching.js';
import { createEngine } from '../src/model/engine.js';
import type { Engine, LoadedModel } from '../src/model/types.js';
import { fillMask, logSoftmax, pseudoLogLikelihood, topK } from '../src/probes/masked-lm.js';
import { fixtureModel } from './engine-fixtures.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

let model: LoadedModel;
let engine: Engine;
before(async () => {
  model = await fixtureModel('tiny-bert');
  engine = await createEngine(model, { engine: 'onnx' });
});
after(async () => engine.dispose());

/** Logits of one unpadded sequence at one position, as a plain array. */
async function logitsAt(ids: number[], pos: number): Promise<Float32Array> {
  const out = await engine.forward(padBatch([ids], model.tokenizer.padId), { hiddenStates: [], attentions: [], mlmLogits: true });
  const V = out.mlmLogits!.shape[2]!;
  return out.mlmLogits!.data.slice(pos * V, (pos + 1) * V);
}

function handLogProb(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return logits[id]! - max - Math.log(sum);
}

test('logSoftmax and topK on a small row', () => {
  const lp = logSoftmax(Float32Array.from([1, 3, 2, 3]));
  const z = Math.exp(1) + 2 * Math.exp(3) + Math.exp(2);
  assert.ok(Math.abs(lp[0]! - (1 - Math.log(z))) < 1e-12);
  assert.deepEqual(topK(lp, 3), [1, 3, 2], 'ties keep the lower id first');
  assert.deepEqual(topK(lp, 10), [1, 3, 2, 0]);
});

test('pseudo-log-likelihood equals the sum of hand-computed log-probabilities, one masked copy at a time', async () => {
  const tok = model.tokenizer;
  const ctx = tok.encodeText('the cat and the').ids.slice(1, -1);
  const ending = tok.encodeText('dogs are electrodynamics.').ids.slice(1, -1);
  assert.ok(ending.length >= 5, 'a multi-piece ending');
  // batch size 2 forces several padded batches of masked copies
  const r = await pseudoLogLikelihood(engine, model, ctx, ending, 2);
  const full = [tok.clsId, ...ctx, ...ending, tok.sepId];
  let want = 0;
  for (let j = 0; j < ending.length; j++) {
    const pos = 1 + ctx.length + j;
    const masked = full.slice();
    masked[pos] = tok.maskId;
    const lp = handLogProb(await logitsAt(masked, pos), full[pos]!);
    assert.ok(Math.abs(r.pieces[j]!.logProb - lp) < 1e-4, `piece ${j}: ${r.pieces[j]!.logProb} vs ${lp}`);
    assert.equal(r.pieces[j]!.token, tok.idToToken(ending[j]!));
    want += lp;
  }
  assert.ok(Math.abs(r.total - want) < 1e-3, `${r.total} vs ${want}`);
});

test('fill-mask ranks each [MASK] independently by the MLM logits at its position', async () => {
  const tok = model.tokenizer;
  const r = await fillMask(engine, model, 'fair is [MASK] . the [MASK] cell', 4);
  assert.equal(r.masks.length, 2);
  const ids = tok.encodeText('fair is [MASK] . the [MASK] cell').ids;
  for (const m of r.masks) {
    assert.equal(ids[m.position], tok.maskId);
    const logits = await logitsAt(ids, m.position);
    const order = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b).slice(0, 4);
    assert.deepEqual(m.candidates.map((c) => c.id), order);
    for (const c of m.candidates) assert.ok(Math.abs(Math.log(c.probability) - handLogProb(logits, c.id)) < 1e-4);
  }
});

test('fill-mask and complete through the CLI, and their bad input', () => {
  const m = join(fixturesDir, 'tiny-bert');
  const fill = runCli(['fill-mask', 'Paris is the [MASK] of France.', '--model', m, '-k', '3', '--json']);
  assert.equal(fill.status, 0, fill.stderr);
  const out = JSON.parse(fill.stdout);
  assert.equal(out.masks.length, 1);
  assert.equal(out.masks[0].candidates.length, 3);
  assert.equal(out.random_init, false);

  const none = runCli(['fill-mask', 'no gap here', '--model', m]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /no \[MASK\]/);
  const noHead = runCli(['fill-mask', 'a [MASK]', '--model', join(fixturesDir, 'tiny-bert-model-only-f16')]);
  assert.equal(noHead.status, 2);
  assert.match(noHead.stderr, /no masked-LM head/);

  const dir = tempDir();
  const items = join(dir, 'items.jsonl');
  writeFileSync(items, [
    JSON.stringify({ context: 'the cat and the', endings: ['dogs are pets.', 'prison cell.'], gold: 0 }),
    '',
    JSON.stringify({ id: 'b', context: 'fair is', endings: ['fair.', 'cell.', 'electrodynamics.'], gold: 'cell.' }),
  ].join('\n'));
  const out2 = join(dir, 'run');
  const c = runCli(['complete', '--file', items, '--model', m, '--out', out2, '--json']);
  assert.equal(c.status, 0, c.stderr);
  const summary = JSON.parse(c.stdout);
  assert.equal(summary.items, 2);
  const preds = readFileSync(join(out2, 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // accuracy recomputed from the per-piece scores in predictions.jsonl
  let correct = 0;
  for (const p of preds) {
    const totals = p.endings.map((e: { pieces: { logProb: number }[] }) => e.pieces.reduce((a, x) => a + x.logProb, 0));
    const best = totals.indexOf(Math.max(...totals));
    assert.equal(best, p.predicted);
    if (best === p.gold) correct++;
  }
  assert.equal(summary.accuracy, correct / 2);
  assert.equal(preds[1].gold, 1, 'gold given as the ending text');

  writeFileSync(items, '{"context": "x", "endings": []}\n');
  const bad = runCli(['complete', '--file', items, '--model', m, '--out', join(dir, 'bad')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /items\.jsonl:1/);
});
