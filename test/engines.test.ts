import assert from 'node:assert/strict';
import type { Scalar, Tensor, Tensor2D } from '@tensorflow/tfjs';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TfjsEngine } from '../src/model/bert-tfjs.js';
import { createEngine } from '../src/model/engine.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { buildEncoderGraph } from '../src/model/onnx-graph.js';
import { loadModel } from '../src/model/load.js';
import { randomWeights } from '../src/model/random.js';
import { findNativeTf, selectTfjsBackend } from '../src/model/tfjs-backend.js';
import type { Engine, ForwardBatch, LoadedModel } from '../src/model/types.js';
import { InputError } from '../src/util/errors.js';
import type { Ui } from '../src/util/ui.js';
import { fixtureModel, maxDiffMasked, positions12, reference, type Reference } from './engine-fixtures.js';
import { tempDir } from './helpers.js';
import { TINY_CONFIG_JSON } from './model-craft.js';

/**
 * Both engines against ../shared/fixtures (an independent float64 BertModel), to 1e-4 where
 * attention_mask is 1, and against each other.
 */
const TOL = 1e-4;

const cache = tempDir('bert-probe-engines-');
let savedCache: string | undefined;
before(() => {
  savedCache = process.env.BERT_PROBE_CACHE;
  process.env.BERT_PROBE_CACHE = cache;
});
after(() => {
  if (savedCache === undefined) delete process.env.BERT_PROBE_CACHE;
  else process.env.BERT_PROBE_CACHE = savedCache;
});

const tinyBert = () => fixtureModel('tiny-bert');
const tinyF16 = () => fixtureModel('tiny-bert-model-only-f16');
/** The MLM checkpoints (safetensors, and pytorch_model.bin with legacy gamma/beta names) share one reference. */
const MLM_FIXTURES = ['tiny-bert', 'tiny-bert-legacy-bin'] as const;

/** Every reference output the fixture holds, compared; returns the worst difference per group. */
async function checkAgainstReference(engine: Engine, model: LoadedModel, ref: Reference): Promise<Record<string, number>> {
  const { batch, tensors } = ref;
  const L = model.config.numHiddenLayers;
  const T = batch.seqLen;
  const worst: Record<string, number> = {};
  const note = (k: string, v: number) => (worst[k] = Math.max(worst[k] ?? 0, v));

  const out = await engine.forward(batch, { mlmLogits: model.hasMlmHead });
  for (let i = 0; i <= L; i++) note('hidden', maxDiffMasked(out.hiddenStates[i]!, tensors.get(`hidden_states.${i}`)!, batch.attentionMask, T));
  if (tensors.has('attentions.0')) {
    for (let l = 0; l < L; l++) note('attention', maxDiffMasked(out.attentions[l]!, tensors.get(`attentions.${l}`)!, batch.attentionMask, T, true));
  }
  if (model.hasMlmHead) {
    note('mlm', maxDiffMasked(positions12(out.mlmLogits!), tensors.get('mlm_logits.positions_1_2')!, new Int32Array(batch.batchSize * 2).fill(1), 2));
  }
  if (tensors.has('masked.hidden_states.0')) {
    const headMask = tensors.get('head_mask')!.data;
    const masked = await engine.forward({ ...batch, headMask });
    for (let i = 0; i <= L; i++) note('masked hidden', maxDiffMasked(masked.hiddenStates[i]!, tensors.get(`masked.hidden_states.${i}`)!, batch.attentionMask, T));
    for (let l = 0; l < L; l++) note('masked attention', maxDiffMasked(masked.attentions[l]!, tensors.get(`masked.attentions.${l}`)!, batch.attentionMask, T, true));
    // The mask really acted: layer 1 head 2 (1-based) is zeroed, so its attention is all 0.
    const a = masked.attentions[0]!;
    const per = T * T;
    for (let b = 0; b < batch.batchSize; b++) assert.ok(a.data.subarray((b * 4 + 1) * per, (b * 4 + 2) * per).every((x) => x === 0));
  }
  return worst;
}

function assertWithin(worst: Record<string, number>, expectGroups: string[]): void {
  assert.deepEqual(Object.keys(worst).sort(), [...expectGroups].sort());
  for (const [k, v] of Object.entries(worst)) assert.ok(v < TOL, `${k}: max |diff| ${v} >= ${TOL}`);
}

const ALL_GROUPS = ['hidden', 'attention', 'mlm', 'masked hidden', 'masked attention'];

describe('tfjs engine reproduces the fixtures', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    for (const name of MLM_FIXTURES) {
      test(`${name} on ${backend}: hidden states, attentions, head mask, MLM logits`, async () => {
        const runtime = await selectTfjsBackend(backend);
        assert.equal(runtime.label, backend);
        const model = await fixtureModel(name);
        const engine = new TfjsEngine(model, runtime);
        try {
          assert.equal(engine.backend, backend);
          assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-reference.safetensors')), ALL_GROUPS);
        } finally {
          await engine.dispose();
        }
        assert.equal(runtime.tf.memory().numTensors, 0, 'no tensor leaked');
      });
    }

    test(`tiny-bert-model-only-f16 on ${backend}: against its own reference`, async () => {
      const runtime = await selectTfjsBackend(backend);
      const model = await tinyF16();
      assert.equal(model.hasMlmHead, false);
      const engine = new TfjsEngine(model, runtime);
      try {
        assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-model-only-f16-reference.safetensors')), ['hidden']);
      } finally {
        await engine.dispose();
      }
    });
  }
});

describe('tfjs engine is differentiable', () => {
  test('d loss / d head mask through TfjsBert.encode matches central finite differences', async () => {
    // cpu: its float32 sums are steady enough for finite differences of a loss of ~2,800.
    const runtime = await selectTfjsBackend('cpu');
    const tf = runtime.tf;
    const model = await tinyBert();
    const { batch } = reference('tiny-bert-reference.safetensors');
    const bert = new TfjsEngine(model, runtime).bert;
    const [B, T] = [batch.batchSize, batch.seqLen];
    const ids = tf.tensor2d(batch.inputIds, [B, T], 'int32');
    const am = tf.tensor2d(batch.attentionMask, [B, T], 'int32');
    const tt = tf.tensor2d(batch.tokenTypeIds, [B, T], 'int32');
    try {
      // A scalar of the last hidden state, as a head-importance score would use (Michel et al. 2019).
      const loss = (hm: Tensor) => tf.sum(tf.square(bert.encode(ids, am, tt, hm as Tensor2D).hiddenStates[3]!)) as Scalar;
      const ones = tf.ones([3, 4]) as Tensor2D;
      const grad = tf.tidy(() => tf.grad(loss)(ones).dataSync());
      const eps = 0.03;
      for (const idx of [0, 6, 11]) {
        const delta = new Float32Array(12);
        delta[idx] = eps;
        const at = (sign: number) => tf.tidy(() => loss(tf.add(ones, tf.mul(tf.tensor2d(delta, [3, 4]), sign)) as Tensor2D).dataSync()[0]!);
        const fd = (at(1) - at(-1)) / (2 * eps);
        assert.ok(Math.abs(grad[idx]! - fd) <= 1e-2 * Math.max(1, Math.abs(fd)), `entry ${idx}: grad ${grad[idx]} vs finite difference ${fd}`);
      }
      ones.dispose();
    } finally {
      tf.dispose([ids, am, tt]);
      bert.dispose();
    }
  });
});

describe('onnx engine reproduces the fixtures', () => {
  for (const name of MLM_FIXTURES) {
    test(`${name}: hidden states, attentions, head mask, MLM logits`, async () => {
      const model = await fixtureModel(name);
      const engine = await OnnxEngine.create(model);
      try {
        assert.equal(engine.backend, 'onnxruntime-cpu');
        assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-reference.safetensors')), ALL_GROUPS);
      } finally {
        await engine.dispose();
      }
    });
  }

  test('tiny-bert-model-only-f16: against its own reference', async () => {
    const model = await tinyF16();
    const engine = await OnnxEngine.create(model);
    try {
      assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-model-only-f16-reference.safetensors')), ['hidden']);
    } finally {
      await engine.dispose();
    }
  });

  test('the graph is cached by weights sha256 and reused on a second create', async () => {
    const model = await tinyF16();
    const first = await OnnxEngine.create(model);
    await first.dispose();
    assert.ok(first.graphPath.startsWith(join(cache, 'onnx')), first.graphPath);
    assert.ok(first.graphPath.includes(model.source.weightsSha256));
    assert.ok(existsSync(first.graphPath));
    const mtime = statSync(first.graphPath).mtimeMs;
    const second = await OnnxEngine.create(model);
    try {
      assert.equal(second.graphPath, first.graphPath);
      assert.equal(second.graphBuilt, false);
      assert.equal(statSync(second.graphPath).mtimeMs, mtime, 'not rewritten');
      assertWithin(await checkAgainstReference(second, model, reference('tiny-bert-model-only-f16-reference.safetensors')), ['hidden']);
    } finally {
      await second.dispose();
    }
  });
});

/** Sentences of different lengths, padded, both segments, random ids: not the fixture batch. */
function otherBatch(vocab: number, maxLen: number): ForwardBatch {
  const B = 5;
  const T = Math.min(maxLen, 23);
  const lengths = [T, 3, 11, 17, 2];
  const inputIds = new Int32Array(B * T);
  const attentionMask = new Int32Array(B * T);
  const tokenTypeIds = new Int32Array(B * T);
  let x = 7;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]!; t++) {
      x = (x * 1103515245 + 12345) >>> 0;
      inputIds[b * T + t] = t === 0 ? 101 : t === lengths[b]! - 1 ? 102 : 1000 + (x % (vocab - 1000));
      attentionMask[b * T + t] = 1;
      tokenTypeIds[b * T + t] = t > lengths[b]! / 2 ? 1 : 0;
    }
  }
  return { batchSize: B, seqLen: T, inputIds, attentionMask, tokenTypeIds };
}

test('a random-init graph is built on a throwaway worker thread: the bytes built here, and no weights drawn on this thread', async () => {
  const dir = tempDir('bert-probe-random-graph-');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIG_JSON, vocab_size: 30522 }));
  const model = await loadModel(`random:${join(dir, 'config.json')}`, { seed: 11 });
  const debug: string[] = [];
  const ui = { warn: () => {}, debug: (m: string) => debug.push(m), spinner: () => ({ succeed() {}, fail() {}, update() {} }) } as unknown as Ui;
  const engine = await OnnxEngine.create(model, { ui });
  try {
    assert.equal(engine.graphBuilt, true);
    assert.ok(readFileSync(engine.graphPath).equals(buildEncoderGraph(model.config, randomWeights(model.config, 11))), 'same graph bytes');
    // Compiled (dist/), the worker builds it; from TypeScript sources (tsx) workers have no loader and it is built here.
    if (import.meta.url.endsWith('.js')) assert.doesNotMatch(debug.join('\n'), /no graph build on a worker thread/);
    assert.equal(Map.prototype.get.call(model.weights, 'embeddings.LayerNorm.weight'), undefined, 'the weights are not held on this thread');
    const out = await engine.forward({ batchSize: 1, seqLen: 3, inputIds: Int32Array.from([101, 2000, 102]), attentionMask: Int32Array.from([1, 1, 1]), tokenTypeIds: new Int32Array(3) }, { hiddenStates: [model.config.numHiddenLayers] });
    assert.ok(out.hiddenStates[model.config.numHiddenLayers]!.data.every(Number.isFinite));
  } finally {
    await engine.dispose();
  }
});

describe('engine robustness', () => {
  test('an unwritable cache folder costs the cache, not the run', async () => {
    const blocker = join(tempDir('bert-probe-blocker-'), 'a-file');
    writeFileSync(blocker, 'not a folder');
    const saved = process.env.BERT_PROBE_CACHE;
    process.env.BERT_PROBE_CACHE = join(blocker, 'cache');
    const warnings: string[] = [];
    const ui = { warn: (m: string) => warnings.push(m), debug: () => {}, spinner: () => ({ succeed() {}, fail() {}, update() {} }) } as unknown as Ui;
    try {
      const model = await tinyF16();
      const engine = await OnnxEngine.create(model, { ui });
      try {
        assert.equal(engine.graphBuilt, true);
        assert.ok(!existsSync(engine.graphPath));
        assert.match(warnings.join('\n'), /could not cache the ONNX graph.*BERT_PROBE_CACHE/s);
        assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-model-only-f16-reference.safetensors')), ['hidden']);
      } finally {
        await engine.dispose();
      }
    } finally {
      process.env.BERT_PROBE_CACHE = saved;
    }
  });

  test('a tfjs engine runs on its own backend even after the process-wide backend was switched', async () => {
    const model = await tinyF16();
    const engine = await createEngine(model, { engine: 'tfjs', backend: 'wasm' });
    try {
      const runtime = await selectTfjsBackend('cpu');
      assert.equal(runtime.tf.getBackend(), 'cpu');
      assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-model-only-f16-reference.safetensors')), ['hidden']);
      assert.equal(runtime.tf.getBackend(), 'wasm');
    } finally {
      await engine.dispose();
    }
  });
});

describe('onnx and tfjs agree on the same batches', () => {
  test('tiny-bert, padded batch of mixed lengths and segments, with and without a head mask', async () => {
    const model = await tinyBert();
    const onnx = await createEngine(model, { engine: 'onnx' });
    const tfjs = await createEngine(model, { engine: 'tfjs', backend: 'wasm' });
    try {
      const batch = otherBatch(model.config.vocabSize, model.config.maxPositionEmbeddings);
      const headMask = Float32Array.from({ length: 12 }, (_, i) => (i % 5 === 0 ? 0 : i % 3 === 0 ? 0.5 : 1));
      for (const b of [batch, { ...batch, headMask }]) {
        const [a, c] = [await onnx.forward(b, { mlmLogits: true }), await tfjs.forward(b, { mlmLogits: true })];
        for (let i = 0; i <= 3; i++) assert.ok(maxDiffMasked(a.hiddenStates[i]!, c.hiddenStates[i]!, b.attentionMask, b.seqLen) < TOL, `hidden ${i}`);
        for (let l = 0; l < 3; l++) assert.ok(maxDiffMasked(a.attentions[l]!, c.attentions[l]!, b.attentionMask, b.seqLen, true) < TOL, `attention ${l}`);
        // Each engine is within 1e-4 of the float64 truth on logits (fixture test above), so two
        // float32 engines may differ by up to 2e-4 (logits reach ~15 here; accumulation order differs).
        assert.ok(maxDiffMasked(a.mlmLogits!, c.mlmLogits!, b.attentionMask, b.seqLen) < 2 * TOL, 'mlm logits');
        assert.deepEqual(a.mlmLogits!.shape, [5, b.seqLen, model.config.vocabSize]);
      }
    } finally {
      await onnx.dispose();
      await tfjs.dispose();
    }
  });
});

describe('engine contract', () => {
  test('only the outputs asked for come back, with the contract shapes', async () => {
    const model = await tinyBert();
    const { batch } = reference('tiny-bert-reference.safetensors');
    for (const engine of [await createEngine(model, { engine: 'onnx' }), await createEngine(model, { engine: 'tfjs', backend: 'wasm' })]) {
      try {
        const out = await engine.forward(batch, { hiddenStates: [0, 3], attentions: [2] });
        assert.deepEqual(out.hiddenStates.map((h) => h !== undefined), [true, false, false, true], engine.kind);
        assert.deepEqual(out.attentions.map((a) => a !== undefined), [false, true, false], engine.kind);
        assert.equal(out.mlmLogits, undefined);
        assert.deepEqual(out.hiddenStates[3]!.shape, [6, 14, 32]);
        assert.deepEqual(out.attentions[1]!.shape, [6, 4, 14, 14]);
        const none = await engine.forward(batch, { hiddenStates: [], attentions: [] });
        assert.ok(none.hiddenStates.every((h) => h === undefined) && none.attentions.every((a) => a === undefined));
      } finally {
        await engine.dispose();
      }
    }
  });

  test('bad batches and requests are InputErrors, the same from both engines', async () => {
    const f16 = await tinyF16();
    const { batch } = reference('tiny-bert-reference.safetensors');
    for (const engine of [await createEngine(f16, { engine: 'onnx' }), await createEngine(f16, { engine: 'tfjs', backend: 'wasm' })]) {
      try {
        await assert.rejects(engine.forward(batch, { mlmLogits: true }), (e: unknown) => e instanceof InputError && /no MLM head/.test(e.message));
        const T = 65;
        const long: ForwardBatch = { batchSize: 1, seqLen: T, inputIds: new Int32Array(T).fill(1000), attentionMask: new Int32Array(T).fill(1), tokenTypeIds: new Int32Array(T) };
        await assert.rejects(engine.forward(long), (e: unknown) => e instanceof InputError && /at most 64/.test(e.message));
        const badId = { ...batch, inputIds: Int32Array.from(batch.inputIds, (v, i) => (i === 3 ? 40000 : v)) };
        await assert.rejects(engine.forward(badId), (e: unknown) => e instanceof InputError && /40000 at row 0, position 3/.test(e.message));
        await assert.rejects(engine.forward(batch, { attentions: [0] }), InputError);
        await assert.rejects(engine.forward({ ...batch, headMask: new Float32Array(5) }), InputError);
      } finally {
        await engine.dispose();
      }
    }
  });

  test('createEngine: auto picks onnx without a CUDA tensorflow backend; --backend picks tfjs', async () => {
    const model = await tinyF16();
    const native = await findNativeTf();
    const auto = await createEngine(model);
    assert.equal(auto.kind, native?.cuda ? 'tfjs' : 'onnx');
    await auto.dispose();
    const wasm = await createEngine(model, { backend: 'wasm' });
    assert.deepEqual([wasm.kind, wasm.backend], ['tfjs', 'wasm']);
    await wasm.dispose();
    if (!native) await assert.rejects(createEngine(model, { engine: 'tfjs', backend: 'tensorflow' }), (e: unknown) => e instanceof InputError && /tfjs-node/.test(e.message));
  });

  test('--device cuda: against the reference where the CUDA provider loads, a clear InputError where not', async (t) => {
    const model = await tinyBert();
    let engine: Engine;
    try {
      engine = await createEngine(model, { engine: 'onnx', device: 'cuda' });
    } catch (err) {
      assert.ok(err instanceof InputError, String(err));
      assert.match(err.message, /--device cuda/);
      assert.match(err.message, /fix:/);
      t.diagnostic('no CUDA provider here: checked the InputError; the CUDA outputs are compared with the reference where it loads');
      return;
    }
    // CUDA present: its outputs are compared with the reference like the CPU engines' (before,
    // this test skipped exactly here, so CUDA outputs were never checked).
    try {
      assert.equal(engine.backend, 'onnxruntime-cuda');
      assertWithin(await checkAgainstReference(engine, model, reference('tiny-bert-reference.safetensors')), ALL_GROUPS);
    } finally {
      await engine.dispose();
    }
  });
});
