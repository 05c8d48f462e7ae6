import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCorpus } from '../src/corpus/load.js';
import { TfjsBert } from '../src/model/bert-tfjs.js';
import { createEngine } from '../src/model/engine.js';
import { loadModel } from '../src/model/load.js';
import { OnnxEngine } from '../src/model/onnx-engine.js';
import { keepHeadsFromMask } from '../src/model/prune-heads.js';
import { selectTfjsBackend } from '../src/model/tfjs-backend.js';
import type { Engine, LoadedModel } from '../src/model/types.js';
import { runAblation, type AblateContext } from '../src/probes/ablate.js';
import { headGradients, importanceScores, type HeadGradients, type Recipe } from '../src/probes/ablate-importance.js';
import { fitting, maskSentences, mlmScore, mlmSet, type MlmSet } from '../src/probes/ablate-mlm.js';
import { leastImportant, prunableCount, pruningCurve, pruningSchedule, fixedOrder, randomOrders } from '../src/probes/ablate-prune.js';
import { prunedSpeed } from '../src/probes/ablate-speed.js';
import { fixtureModel, maxDiffMasked, reference } from './engine-fixtures.js';
import { dataMirror, tempDir } from './helpers.js';
import { DECISIVE_CONFIG_JSON, DECISIVE_HEAD, decisiveHeadWeights, writeTinyCheckpoint } from './model-craft.js';

const cache = tempDir('bert-probe-ablate-');
const saved: Record<string, string | undefined> = {};
before(() => {
  for (const k of ['BERT_PROBE_CACHE', 'BERT_PROBE_DATA_MIRROR']) saved[k] = process.env[k];
  process.env.BERT_PROBE_CACHE = cache;
  process.env.BERT_PROBE_DATA_MIRROR = dataMirror;
});
after(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** First `n` EWT dev sentences that fit the model, masked with `seed`. */
async function ewtSet(model: LoadedModel, n: number, seed: number, mode: '80-10-10' | 'all-mask'): Promise<MlmSet> {
  const corpus = await loadCorpus('ewt:dev', { offline: true });
  const enc = fitting(corpus.sentences.slice(0, n).map((s) => model.tokenizer.encodeWords(s.words)), model.config.maxPositionEmbeddings).kept;
  return mlmSet(maskSentences(enc, { seed, mode, maskId: model.tokenizer.maskId, vocabSize: model.config.vocabSize }), 8, model.tokenizer.padId);
}

describe('MLM masking', () => {
  const enc = Array.from({ length: 400 }, (_, i) => ({ ids: Int32Array.from({ length: 2 + (i % 30) + 1 }, (_, t) => (t === 0 ? 101 : 1000 + t)) }));
  for (const e of enc) e.ids[e.ids.length - 1] = 102;

  test('15% of the content pieces (at least one), never [CLS]/[SEP], seeded', () => {
    const a = maskSentences(enc, { seed: 3, mode: '80-10-10', maskId: 103, vocabSize: 30522 });
    const b = maskSentences(enc, { seed: 3, mode: '80-10-10', maskId: 103, vocabSize: 30522 });
    const c = maskSentences(enc, { seed: 4, mode: '80-10-10', maskId: 103, vocabSize: 30522 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.map((x) => [...x.positions]), c.map((x) => [...x.positions]));
    a.forEach((x, i) => {
      const content = enc[i]!.ids.length - 2;
      assert.equal(x.positions.length, Math.max(1, Math.round(content * 0.15)));
      for (const p of x.positions) assert.ok(p >= 1 && p <= content);
      assert.deepEqual([...x.labels], [...x.positions].map((p) => enc[i]!.ids[p]));
      assert.equal(new Set(x.positions).size, x.positions.length);
    });
  });

  test('80/10/10: [MASK], a random id, or unchanged; all-mask: always [MASK]', () => {
    const a = maskSentences(enc, { seed: 5, mode: '80-10-10', maskId: 103, vocabSize: 30522 });
    let mask = 0;
    let same = 0;
    let total = 0;
    a.forEach((x, i) =>
      x.positions.forEach((p) => {
        total++;
        if (x.ids[p] === 103) mask++;
        else if (x.ids[p] === enc[i]!.ids[p]) same++;
      }),
    );
    assert.ok(total > 800, `${total} chosen pieces`);
    assert.ok(Math.abs(mask / total - 0.8) < 0.04, `[MASK] ${mask / total}`);
    assert.ok(Math.abs(same / total - 0.1) < 0.03, `unchanged ${same / total}`);
    const m = maskSentences(enc, { seed: 5, mode: 'all-mask', maskId: 103, vocabSize: 30522 });
    m.forEach((x) => x.positions.forEach((p) => assert.equal(x.ids[p], 103)));
  });
});

describe('importance recipes and pruning schedules', () => {
  const g: HeadGradients = {
    absPerToken: Float64Array.from([4, 3, 2, 6]),
    absPerExample: Float64Array.from([1, 2, 3, 4]),
    signed: Float64Array.from([0, 0, 0, 0]),
    tokens: 10,
    examples: 2,
    pieces: 2,
  };

  test('michel: abs per token, last layer by predicted pieces, L2 per layer', () => {
    const { raw, score } = importanceScores(g, 'michel', 2, 2);
    assert.deepEqual([...raw], [0.4, 0.3, 1, 3]);
    const n0 = Math.hypot(0.4, 0.3);
    const n1 = Math.hypot(1, 3);
    [0.4 / n0, 0.3 / n0, 1 / n1, 3 / n1].forEach((v, i) => assert.ok(Math.abs(score[i]! - v) < 1e-12));
  });

  test('bertology: abs per example, by tokens, L2 per layer, then min-max', () => {
    const { raw, score } = importanceScores(g, 'bertology', 2, 2);
    assert.deepEqual([...raw], [0.1, 0.2, 0.3, 0.4]);
    const l2 = [0.1 / Math.hypot(0.1, 0.2), 0.2 / Math.hypot(0.1, 0.2), 0.3 / 0.5, 0.4 / 0.5];
    const [lo, hi] = [Math.min(...l2), Math.max(...l2)];
    l2.forEach((v, i) => assert.ok(Math.abs(score[i]! - (v - lo) / (hi - lo)) < 1e-12));
  });

  test('schedules: michel 5% steps of int(144 p / 100), bertology 10% steps of 14', () => {
    const m = pruningSchedule('michel', 144);
    assert.equal(m.length, 20);
    assert.deepEqual(m.slice(0, 4), [7, 14, 21, 28]);
    assert.equal(m[9], 72);
    assert.equal(m[19], 144);
    assert.deepEqual(pruningSchedule('bertology', 144), [14, 28, 42, 56, 70, 84, 98, 112, 126, 140, 144]);
    assert.deepEqual(pruningSchedule('michel', 12), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  test('curves prune the least important unmasked heads; the stopping rule reads a loss', async () => {
    const score = [0.5, 0.1, 0.9, 0.3];
    assert.deepEqual(leastImportant(score, [1, 1, 1, 1]), [1, 3, 0, 2]);
    assert.deepEqual(leastImportant(score, [1, 0, 1, 1]), [3, 0, 2]);
    const seen: number[][] = [];
    const curve = await pruningCurve(4, [1, 3, 4], fixedOrder(leastImportant(score, [1, 1, 1, 1])), async (m) => {
      seen.push([...m]);
      return m.reduce((a, v) => a + v, 0);
    });
    assert.deepEqual(seen, [[1, 0, 1, 1], [0, 0, 1, 0], [0, 0, 0, 0]]);
    assert.deepEqual(curve.order, [1, 3, 0, 2]);
    assert.equal(prunableCount(10, [{ headsPruned: 1, value: 10.5 }, { headsPruned: 2, value: 11.2 }, { headsPruned: 3, value: 10 }], false, 0.9), 1);
    assert.equal(prunableCount(0.8, [{ headsPruned: 1, value: 0.75 }, { headsPruned: 2, value: 0.7 }], true, 0.9), 1);
    const r = randomOrders(12, 5, 42);
    assert.equal(new Set(r.map((o) => o.join(','))).size, 5);
    for (const o of r) assert.deepEqual([...o].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
    assert.deepEqual(randomOrders(12, 5, 42), r);
  });
});

describe('gradients through BERT', () => {
  test('fixture model: d loss / d head mask (tfjs) equals a central finite difference on the ONNX engine to 1e-3 relative, every head', async () => {
    const model = await fixtureModel('tiny-bert');
    const set = await ewtSet(model, 16, 1, '80-10-10');
    const runtime = await selectTfjsBackend();
    const bert = new TfjsBert(runtime.tf, model.config, model.weights, true);
    const onnx = await createEngine(model, { engine: 'onnx' });
    try {
      const total = model.config.numHiddenLayers * model.config.numAttentionHeads;
      const ones = new Float32Array(total).fill(1);
      const g = await headGradients(bert, set, ones);
      assert.equal(g.examples, set.examples.length);
      // float32 throughout: the loss (a sum of 16 sentence losses of ~14 nats) carries ~1e-5 of
      // rounding noise, so the step is as large as the curvature allows.
      const eps = 3e-3;
      for (let i = 0; i < total; i++) {
        const at = async (s: number) => {
          const m = Float32Array.from(ones);
          m[i] = 1 + s * eps;
          return (await mlmScore(onnx, set, m)).exampleLossSum;
        };
        const fd = ((await at(1)) - (await at(-1))) / (2 * eps);
        const rel = Math.abs(g.signed[i]! - fd) / Math.abs(fd);
        // 1e-3 relative, plus the quotient's own rounding noise: two losses of ~1e-5 noise each
        // over 2·eps is ~3e-3 absolute, which a head with a small gradient (|fd| ~ 1.5) exceeds
        // at 1e-3 relative alone (measured: 1.86e-3 after a change of GELU kernel, issue 14).
        const noise = (2 * 1e-5) / (2 * eps);
        assert.ok(Math.abs(g.signed[i]! - fd) <= 1e-3 * Math.abs(fd) + noise, `head ${i}: tfjs ${g.signed[i]} vs finite difference ${fd} (relative ${rel.toExponential(2)}) on tfjs ${runtime.label}`);
      }
      // The per-example and per-token sums bound the signed one.
      for (let i = 0; i < total; i++) assert.ok(g.absPerToken[i]! >= g.absPerExample[i]! - 1e-9 && g.absPerExample[i]! >= Math.abs(g.signed[i]!) - 1e-9);
    } finally {
      bert.dispose();
      await onnx.dispose();
    }
  });
});

describe('pruned ONNX graph', () => {
  test('equals the head-masked full model to 1e-4 (hidden states, kept attentions, MLM logits), a layer pruned whole included', async () => {
    const model = await fixtureModel('tiny-bert');
    const { batch } = reference('tiny-bert-reference.safetensors');
    const full = await OnnxEngine.create(model);
    const masks = [
      Float32Array.from([1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1]),
      Float32Array.from([0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1]), // layer 1 has no head left
      Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ];
    try {
      for (const mask of masks) {
        const keep = keepHeadsFromMask(model.config, mask);
        const pruned = await OnnxEngine.create(model, { keepHeads: keep });
        try {
          const withAttn = keep.map((k, l) => (k.length ? l + 1 : 0)).filter((l) => l > 0);
          const a = await full.forward({ ...batch, headMask: mask }, { attentions: withAttn, mlmLogits: true });
          const b = await pruned.forward(batch, { attentions: withAttn, mlmLogits: true });
          for (let i = 0; i <= 3; i++) assert.ok(maxDiffMasked(a.hiddenStates[i]!, b.hiddenStates[i]!, batch.attentionMask, batch.seqLen) < 1e-4, `hidden ${i}`);
          assert.ok(maxDiffMasked(a.mlmLogits!, b.mlmLogits!, batch.attentionMask, batch.seqLen) < 1e-4, 'mlm logits');
          for (const l of withAttn) {
            const got = b.attentions[l - 1]!;
            assert.deepEqual(got.shape, [batch.batchSize, keep[l - 1]!.length, batch.seqLen, batch.seqLen]);
            // The kept heads' maps are the full model's maps of those heads.
            const T = batch.seqLen;
            for (let r = 0; r < batch.batchSize; r++)
              keep[l - 1]!.forEach((h, j) => {
                const x = a.attentions[l - 1]!.data.subarray((r * 4 + h) * T * T, (r * 4 + h + 1) * T * T);
                const y = got.data.subarray((r * keep[l - 1]!.length + j) * T * T, (r * keep[l - 1]!.length + j + 1) * T * T);
                for (let k = 0; k < x.length; k++) assert.ok(Math.abs(x[k]! - y[k]!) < 1e-4);
              });
          }
        } finally {
          await pruned.dispose();
        }
      }
      const speed = await prunedSpeed(model, full, [batch], masks[0]!, 1);
      assert.equal(speed.headsPruned, 4);
      assert.ok(speed.maxAbsDiff < 1e-4);
      assert.ok(speed.prunedTokensPerSecond > 0 && speed.fullTokensPerSecond > 0);
    } finally {
      await full.dispose();
    }
  });
});

describe('a crafted decisive head', () => {
  let model: LoadedModel;
  let engine: Engine;
  let set: MlmSet;
  before(async () => {
    const dir = join(tempDir('bert-probe-decisive-'), 'decisive');
    writeTinyCheckpoint(dir, { config: DECISIVE_CONFIG_JSON, weights: decisiveHeadWeights() });
    model = await loadModel(dir, { offline: true });
    engine = await createEngine(model, { engine: 'onnx' });
    const words = ['the', 'cat', 'sat', 'on', 'mat', 'dog', 'a'];
    const enc = words.flatMap((w, i) => [model.tokenizer.encodeWords(Array(5 + (i % 3)).fill(w)), model.tokenizer.encodeWords(Array(8).fill(w))]);
    set = mlmSet(maskSentences(enc, { seed: 7, mode: 'all-mask', maskId: model.tokenizer.maskId, vocabSize: model.config.vocabSize }), 4, model.tokenizer.padId);
  });
  after(async () => engine.dispose());

  for (const recipe of ['michel', 'bertology'] as Recipe[]) {
    test(`${recipe}: its single-head ablation Δ is the largest, and it is the most important head`, async () => {
      const runtime = await selectTfjsBackend();
      const bert = new TfjsBert(runtime.tf, model.config, model.weights, true);
      const noBar = { increment: () => {}, setTotal: () => {}, stop: () => {} };
      const ctx: AblateContext = {
        label: 'decisive',
        layers: 2,
        heads: 2,
        metric: { name: 'mlm_loss', higherIsBetter: false, evaluate: async (m) => (await mlmScore(engine, set, m)).loss },
        importance: async (m) => {
          const gradients = await headGradients(bert, set, m);
          return { ...importanceScores(gradients, recipe, 2, 2), gradients };
        },
        speed: null,
        stage: (_n, fn) => fn(),
        bar: () => noBar,
      };
      try {
        const r = await runAblation(ctx, { recipe, recompute: false, analyses: new Set(['ablation', 'keep-one', 'importance', 'pruning']), randomOrders: 2, seed: 1, threshold: 0.9, speedAt: 0.5 });
        const { layer, head } = DECISIVE_HEAD;
        const delta = r.delta!;
        const crafted = delta[layer - 1]![head - 1]!;
        for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) if (l !== layer - 1 || h !== head - 1) assert.ok(crafted > 5 * Math.abs(delta[l]![h]!), `crafted Δ ${crafted} vs attn.${l + 1}.${h + 1} Δ ${delta[l]![h]}`);
        const s = r.summary as { singleHead: { mostDecisive: { unit: string }[] }; importance: { mostImportant: { unit: string }[] }; keepOne: { bestHead: number }[] };
        assert.equal(s.singleHead.mostDecisive[0]!.unit, `attn.${layer}.${head}`);
        assert.equal(s.importance.mostImportant[0]!.unit, `attn.${layer}.${head}`);
        assert.equal(s.keepOne[layer - 1]!.bestHead, head);
        // Pruning by importance keeps the crafted head to the last: the loss stays low longer than at random.
        const curve = r.curves!.importance;
        assert.equal(curve.order[curve.order.length - 1], (layer - 1) * 2 + (head - 1));
        assert.ok(r.rows.some((row) => row.analysis === 'pruning' && row.order === 'random.2'));
      } finally {
        bert.dispose();
      }
    });
  }
});
