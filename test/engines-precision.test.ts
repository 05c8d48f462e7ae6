import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { createEngine } from '../src/model/engine.js';
import { OnnxEngine, graphCachePath, loadOrt } from '../src/model/onnx-engine.js';
import { buildEncoderGraph, quantizeColumns } from '../src/model/onnx-graph.js';
import { extractActivations, storeIdentity } from '../src/extract/pipeline.js';
import { defaultStoreDir } from '../src/extract/store.js';
import { InputError } from '../src/util/errors.js';
import { join } from 'node:path';
import { fixtureModel, maxDiffMasked, reference } from './engine-fixtures.js';
import { FakeEngine, fakeCorpus, fakeModel } from './extract-fakes.js';
import { tempDir } from './helpers.js';

/**
 * `--precision int8` (issue 14): the quantiser, the int8 graph on the tiny-bert fixture (close
 * to fp32, not equal to it: the int8 path really ran), the precision in the store identity, and
 * the session on a worker thread giving the same floats as on the calling thread.
 */
const cache = tempDir('bert-probe-precision-');
let savedCache: string | undefined;
before(() => {
  savedCache = process.env.BERT_PROBE_CACHE;
  process.env.BERT_PROBE_CACHE = cache;
});
after(() => {
  if (savedCache === undefined) delete process.env.BERT_PROBE_CACHE;
  else process.env.BERT_PROBE_CACHE = savedCache;
});

test('quantizeColumns: symmetric per-column int8, round-trip error at most half a step', () => {
  const inp = 5, out = 3;
  const w = Float32Array.from({ length: inp * out }, (_, i) => Math.sin(i * 1.7) * (1 + (i % out)));
  w[2 * out + 1] = -4; // column 1's largest magnitude is negative
  for (let i = 0; i < inp; i++) w[i * out + 2] = 0; // an all-zero column
  const { q, scale } = quantizeColumns(w, inp, out);
  assert.ok(Math.abs(scale[1]! - 4 / 127) < 1e-7);
  assert.equal(q[2 * out + 1], -127);
  for (let i = 0; i < inp; i++) {
    for (let j = 0; j < out; j++) {
      assert.ok(q[i * out + j]! >= -127 && q[i * out + j]! <= 127);
      assert.ok(Math.abs(q[i * out + j]! * scale[j]! - w[i * out + j]!) <= scale[j]! / 2 + 1e-7, `(${i}, ${j})`);
    }
  }
  assert.equal(scale[2], 1);
  for (let i = 0; i < inp; i++) assert.equal(q[i * out + 2], 0);
});

test('int8: the graph quantises the six linear layers per encoder layer; outputs close to the fp32 reference, not equal', async () => {
  const model = await fixtureModel('tiny-bert');
  const ref = reference('tiny-bert-reference.safetensors');
  const L = model.config.numHiddenLayers;
  const fp32 = await OnnxEngine.create(model);
  const int8 = await OnnxEngine.create(model, { precision: 'int8' });
  try {
    assert.equal(int8.precision, 'int8');
    assert.equal(fp32.precision, 'fp32');
    assert.ok(int8.graphPath.endsWith('.int8.onnx') && int8.graphPath !== fp32.graphPath);
    const graph = onnxProto.onnx.ModelProto.decode(readFileSync(int8.graphPath));
    const dq = graph.graph!.node!.filter((n) => n.opType === 'DynamicQuantizeMatMul' && n.domain === 'com.microsoft');
    assert.equal(dq.length, 6 * L);
    assert.equal(graph.graph!.node!.filter((n) => n.opType === 'MatMul').length, 2 * L, 'only Q·Kᵀ and P·V stay float MatMuls');
    const a = await fp32.forward(ref.batch);
    const b = await int8.forward(ref.batch);
    const T = ref.batch.seqLen, mask = ref.batch.attentionMask;
    let hidden = 0, attention = 0;
    for (let i = 0; i <= L; i++) hidden = Math.max(hidden, maxDiffMasked(a.hiddenStates[i]!, b.hiddenStates[i]!, mask, T));
    for (let l = 0; l < L; l++) attention = Math.max(attention, maxDiffMasked(a.attentions[l]!, b.attentions[l]!, mask, T, true));
    assert.equal(maxDiffMasked(a.hiddenStates[0]!, b.hiddenStates[0]!, mask, T), 0, 'embeddings are not quantised');
    assert.ok(hidden > 1e-4, `int8 should differ from fp32 (max ${hidden})`);
    // Hidden states are LayerNorm outputs (unit scale). tiny-bert (hidden 32, measured max 0.30,
    // mean below 0.03) errs more than bert-base shape (docs/precision.md): a bound, not a target.
    assert.ok(hidden < 0.5, `int8 hidden states too far from fp32: ${hidden}`);
    let sum = 0, n = 0;
    for (let i = 1; i <= L; i++) {
      const x = a.hiddenStates[i]!.data, y = b.hiddenStates[i]!.data;
      for (let j = 0; j < x.length; j++) (sum += Math.abs(x[j]! - y[j]!)), n++;
    }
    assert.ok(sum / n < 0.05, `int8 mean hidden error ${sum / n}`);
    assert.ok(attention < 0.5, `int8 attention too far from fp32: ${attention}`); // measured 0.26 (tiny-bert)
    for (const h of b.hiddenStates) assert.ok(h!.data.every(Number.isFinite));
  } finally {
    await fp32.dispose();
    await int8.dispose();
  }
});

test('hidden-states-only graph (fused MultiHeadAttention): fp32 equals the fixtures to 1e-4; int8 forwards without attention use it and equal the full graph', async () => {
  const model = await fixtureModel('tiny-bert');
  const ref = reference('tiny-bert-reference.safetensors');
  const { batch } = ref;
  const L = model.config.numHiddenLayers;
  const T = batch.seqLen;
  // fp32: the graph itself against the float64 reference (the engine keeps one fp32 graph; this
  // keeps the variant honest should a measurement ever switch fp32 to it).
  const ort = await loadOrt();
  const graph = buildEncoderGraph(model.config, model.weights, undefined, { attentionOutputs: false });
  const decoded = onnxProto.onnx.ModelProto.decode(graph).graph!;
  assert.equal(decoded.node!.filter((n) => n.opType === 'MultiHeadAttention' && n.domain === 'com.microsoft').length, L);
  assert.ok(!decoded.output!.some((o) => o.name!.startsWith('attn.')) && !decoded.input!.some((i) => i.name === 'head_mask'));
  const session = await ort.InferenceSession.create(graph, { graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
  const i64 = (a: Int32Array) => new ort.Tensor('int64', BigInt64Array.from(a, (v) => BigInt(v)), [batch.batchSize, T]);
  const r = await session.run({ input_ids: i64(batch.inputIds), attention_mask: i64(batch.attentionMask), token_type_ids: i64(batch.tokenTypeIds) });
  for (let i = 0; i <= L; i++) {
    const t = r[`layer.${i}`]!;
    const d = maxDiffMasked({ data: t.data as Float32Array, shape: t.dims.map(Number) }, ref.tensors.get(`hidden_states.${i}`)!, batch.attentionMask, T);
    assert.ok(d <= 1e-4, `layer.${i}: ${d}`);
  }
  await session.release();
  // int8: hidden-only forwards run on the hidden graph (cached beside the full one), others on the full graph.
  const int8 = await OnnxEngine.create(model, { precision: 'int8' });
  try {
    const hiddenOnly = { hiddenStates: [...Array(L + 1).keys()], attentions: [] };
    assert.equal(int8.graphFor({ attentions: new Set() }, batch), 'hidden');
    assert.equal(int8.graphFor({ attentions: new Set([1]) }, batch), 'full');
    assert.equal(int8.graphFor({ attentions: new Set() }, { ...batch, headMask: new Float32Array(L * model.config.numAttentionHeads).fill(1) }), 'full');
    const a = await int8.forward(batch, hiddenOnly);
    const b = await int8.forward(batch);
    assert.ok(b.attentions.every((x) => x), 'the full graph answered the forward with attention');
    const hiddenGraph = onnxProto.onnx.ModelProto.decode(readFileSync(graphCachePath(model, 'hidden', 'int8'))).graph!;
    assert.equal(hiddenGraph.node!.filter((n) => n.opType === 'MultiHeadAttention').length, L);
    assert.equal(hiddenGraph.node!.filter((n) => n.opType === 'DynamicQuantizeMatMul').length, 6 * L);
    for (let i = 0; i <= L; i++) {
      const d = maxDiffMasked(a.hiddenStates[i]!, b.hiddenStates[i]!, batch.attentionMask, T);
      assert.ok(d <= 1e-5, `int8 layer.${i}: hidden graph vs full graph ${d}`);
    }
  } finally {
    await int8.dispose();
  }
});

test('the session on a worker thread and on the calling thread give the same floats', async () => {
  const model = await fixtureModel('tiny-bert');
  const ref = reference('tiny-bert-reference.safetensors');
  const worker = await OnnxEngine.create(model);
  const local = await OnnxEngine.create(model, { worker: false });
  try {
    const a = await worker.forward(ref.batch);
    const b = await local.forward(ref.batch);
    for (let i = 0; i < a.hiddenStates.length; i++) assert.deepEqual(a.hiddenStates[i]!.data, b.hiddenStates[i]!.data);
    for (let l = 0; l < a.attentions.length; l++) assert.deepEqual(a.attentions[l]!.data, b.attentions[l]!.data);
    // two batches in flight at once come back to their own callers
    const [x, y] = await Promise.all([worker.forward(ref.batch, { hiddenStates: [1], attentions: [] }), worker.forward(ref.batch, { hiddenStates: [2], attentions: [] })]);
    assert.deepEqual(x.hiddenStates[1]!.data, b.hiddenStates[1]!.data);
    assert.deepEqual(y.hiddenStates[2]!.data, b.hiddenStates[2]!.data);
  } finally {
    await worker.dispose();
    await local.dispose();
  }
});

test('--precision int8 is refused for the tfjs engine (clear error, exit 2)', async () => {
  const model = await fixtureModel('tiny-bert');
  await assert.rejects(createEngine(model, { engine: 'tfjs', precision: 'int8' }), (err: unknown) => err instanceof InputError && /--precision int8/.test(err.message));
});

test('precision is part of the store identity: an fp32 store is not reused for int8', async () => {
  const corpus = fakeCorpus(4);
  const m = fakeModel('model-p', 'c'.repeat(64));
  const dir = join(tempDir(), 's');
  const store = await extractActivations({ model: m, engine: new FakeEngine(m.config), corpus, request: { layers: [1], attentionLayers: [] }, storeDir: dir });
  assert.equal(store.identity.precision, 'fp32');
  await assert.rejects(
    extractActivations({ model: m, engine: new FakeEngine(m.config), corpus, precision: 'int8', request: { layers: [1], attentionLayers: [] }, storeDir: dir }),
    (err: unknown) => err instanceof InputError && /another precision/.test(err.message),
  );
  const id = storeIdentity({ model: m, corpus });
  assert.notEqual(defaultStoreDir(id), defaultStoreDir(storeIdentity({ model: m, corpus, precision: 'int8' })));
});
