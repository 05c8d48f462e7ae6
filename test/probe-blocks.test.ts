/** Building blocks of probe definitions: gradients against finite differences, values against references. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { l2Penalty, linear, mlp, scalarMix, sigmoidBce, softmaxCrossEntropy, spanAttentionPool, structuralDepthLoss, structuralDistanceLoss } from '../src/probes/blocks.js';
import { checkGradients, randomData } from './graph-check.js';
import { AutodiffGraph } from '../src/probes/graph/graph.js';
import { GraphSession } from '../src/probes/graph/session.js';
import type { Feed, Value } from '../src/probes/graph/types.js';

const i64 = (v: number[]) => BigInt64Array.from(v.map(BigInt));
const f64 = (v: number[]) => Float64Array.from(v);

/** Value of a scalar built from float64 feeds. */
async function evaluate(build: (g: AutodiffGraph, v: Record<string, Value>) => Value, feeds: Record<string, Feed & { shape?: (number | string)[]; type?: 'float' | 'int64' | 'bool' }>): Promise<number[]> {
  const g = new AutodiffGraph({ precision: 'float64' });
  const v: Record<string, Value> = {};
  for (const [k, f] of Object.entries(feeds)) v[k] = g.input(k, f.shape ?? [...f.dims], f.type ?? 'float');
  const s = await GraphSession.create(g.toOnnx({ __out: build(g, v) }, 't'));
  const r = await s.run(feeds);
  await s.dispose();
  return [...(r.__out!.data as Float64Array)];
}

test('linear and l2Penalty', async () => {
  await checkGradients('linear', { wrt: { x: { dims: [3, 4], shape: ['n', 4] }, w: { dims: [4, 2] }, b: { dims: [2] } }, build: (g, v) => linear(g, v.x!, v.w!, v.b!) });
  await checkGradients('l2', { wrt: { a: { dims: [3, 2] }, b: { dims: [2] } }, scalar: true, build: (g, v) => l2Penalty(g, [v.a!, v.b!], 0.3) });
  const [y] = await evaluate((g, v) => l2Penalty(g, [v.a!], 0.5), { a: { data: f64([1, 2, 3]), dims: [3] } });
  assert.equal(y, 7);
});

test("mlp (Tenney: Linear→Tanh→LayerNorm→Dropout→Linear), with a dropout mask and in eval", async () => {
  const mask = Float64Array.from({ length: 5 * 6 }, (_, i) => (i % 3 === 0 ? 0 : 1 / 0.7));
  const wrt: Record<string, { dims: number[]; shape?: (number | string)[]; range?: [number, number] }> = {
    x: { dims: [5, 4], shape: ['n', 4] },
    'm.0.weight': { dims: [4, 6] }, 'm.0.bias': { dims: [6] },
    'm.ln.weight': { dims: [6], range: [0.5, 1.5] }, 'm.ln.bias': { dims: [6] },
    'm.1.weight': { dims: [6, 3] }, 'm.1.bias': { dims: [3] },
  };
  const g = new AutodiffGraph({ precision: 'float64', training: true });
  const v: Record<string, Value> = {};
  for (const [k, w] of Object.entries(wrt)) v[k] = g.input(k, w.shape ?? w.dims);
  const y = mlp(g, v.x!, v, 'm', { dropout: 0.3, maskName: 'drop' });
  assert.deepEqual(g.declared.filter((d) => d.kind === 'mask').map((d) => [d.name, d.shape, d.p]), [['drop', ['n', 6], 0.3]]);
  assert.deepEqual(y.shape, ['n', 3]);
  await checkGradients('mlp train', { wrt, extraFeeds: { drop: { data: mask, dims: [5, 6] } }, build: (g, v) => mlp(g, v.x!, v, 'm', { dropout: 0.3, maskName: 'drop' }) });
  await checkGradients('mlp eval', { wrt, training: false, build: (g, v) => mlp(g, v.x!, v, 'm', { dropout: 0.3, maskName: 'drop' }) });
});

test('scalarMix: γ·Σ softmax(w)ₗ hₗ', async () => {
  await checkGradients('scalarMix', { wrt: { h: { dims: [3, 2, 4], shape: [3, 'n', 4] }, w: { dims: [3] }, gamma: { dims: [1], range: [0.5, 2] } }, build: (g, v) => scalarMix(g, v.h!, v.w!, v.gamma!) });
  // w = 0, γ = 2: twice the mean of the layers.
  const y = await evaluate((g, v) => scalarMix(g, v.h!, v.w!, v.gamma!), { h: { data: f64([1, 2, 3, 4, 5, 6]), dims: [3, 2] }, w: { data: f64([0, 0, 0]), dims: [3] }, gamma: { data: f64([2]), dims: [1] } });
  assert.deepEqual(y.map((x) => Math.round(x * 1e9) / 1e9), [6, 8]);
});

test('spanAttentionPool: softmax of w·h+b within each ragged span', async () => {
  // tokens 0..5; spans [1,3], [4], [0,1,2,3] padded to width 4.
  const index = i64([1, 2, 3, 0, 4, 0, 0, 0, 0, 1, 2, 3]);
  const inSpan = Uint8Array.from([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1]);
  const data = { index: { feed: { data: index, dims: [3, 4] }, shape: ['s', 'width'], type: 'int64' as const }, inSpan: { feed: { data: inSpan, dims: [3, 4] }, shape: ['s', 'width'], type: 'bool' as const } };
  await checkGradients('span pool', { wrt: { h: { dims: [6, 3], shape: ['t', 3] }, w: { dims: [3, 1] }, b: { dims: [1] } }, data, build: (g, v) => spanAttentionPool(g, v.h!, v.index!, v.inSpan!, v.w!, v.b!) });
  // A one-token span is that token; padding never contributes.
  const h = randomData(18, 5) as Float64Array;
  const y = await evaluate((g, v) => spanAttentionPool(g, v.h!, v.index!, v.inSpan!, v.w!, v.b!), {
    h: { data: h, dims: [6, 3] }, w: { data: f64([1, -2, 0.5]), dims: [3, 1] }, b: { data: f64([0.1]), dims: [1] },
    index: { data: index, dims: [3, 4], type: 'int64' }, inSpan: { data: inSpan, dims: [3, 4], type: 'bool' },
  });
  for (let d = 0; d < 3; d++) assert.ok(Math.abs(y[3 + d]! - h[4 * 3 + d]!) < 1e-12);
  // Span 0 by hand.
  const a = [1, 2, 3].map((t) => h[t * 3]! * 1 - 2 * h[t * 3 + 1]! + 0.5 * h[t * 3 + 2]! + 0.1);
  const m = Math.max(...a);
  const e = a.map((x) => Math.exp(x - m));
  const z = e.reduce((p, q) => p + q, 0);
  for (let d = 0; d < 3; d++) {
    const want = [1, 2, 3].reduce((s, t, k) => s + (e[k]! / z) * h[t * 3 + d]!, 0);
    assert.ok(Math.abs(y[d]! - want) < 1e-12, `span 0 dim ${d}: ${y[d]} vs ${want}`);
  }
});

test('softmaxCrossEntropy (class weights as torch) and sigmoidBce', async () => {
  const labels = { feed: { data: i64([2, 0, 1, 2]), dims: [4] }, shape: ['n'], type: 'int64' as const };
  await checkGradients('xent', { wrt: { z: { dims: [4, 3], shape: ['n', 3] } }, data: { y: labels }, scalar: true, build: (g, v) => softmaxCrossEntropy(g, v.z!, v.y!) });
  await checkGradients('xent weighted', { wrt: { z: { dims: [4, 3], shape: ['n', 3] } }, data: { y: labels, cw: { feed: { data: f64([0.5, 2, 1]), dims: [3] }, shape: [3] } }, scalar: true, build: (g, v) => softmaxCrossEntropy(g, v.z!, v.y!, v.cw!) });
  // Against the definition: Σ w_y·nll / Σ w_y.
  const z = [0.2, -1, 0.5, 1.5, 0, -0.3];
  const [got] = await evaluate((g, v) => softmaxCrossEntropy(g, v.z!, v.y!, v.cw!), { z: { data: f64(z), dims: [2, 3] }, y: { data: i64([2, 0]), dims: [2], type: 'int64' }, cw: { data: f64([0.5, 2, 1]), dims: [3] } });
  const nll = (row: number[], y: number) => Math.log(row.reduce((s, x) => s + Math.exp(x), 0)) - row[y]!;
  const want = (1 * nll(z.slice(0, 3), 2) + 0.5 * nll(z.slice(3), 0)) / 1.5;
  assert.ok(Math.abs(got! - want) < 1e-12, `${got} vs ${want}`);
  const t = { feed: { data: f64([1, 0, 1, 0, 0, 1]), dims: [2, 3] }, shape: ['n', 3] };
  await checkGradients('bce', { wrt: { z: { dims: [2, 3], shape: ['n', 3], data: [0.3, -1.2, 2, -0.4, 0.8, -2.5] } }, data: { t }, scalar: true, build: (g, v) => sigmoidBce(g, v.z!, v.t!) });
  const [bce] = await evaluate((g, v) => sigmoidBce(g, v.z!, v.t!), { z: { data: f64([30, -0.5]), dims: [1, 2] }, t: { data: f64([0, 1]), dims: [1, 2] } });
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  assert.ok(Math.abs(bce! - (30 - Math.log(sig(-0.5))) / 2) < 1e-9, `bce ${bce}`);
});

/**
 * A small structural batch as structuralFeeds builds it: two sentences (words 0–2 and 3–4), in one
 * padded group, or in two groups padded apart (the short sentence first).
 */
function structuralBatch(kind: 'distance' | 'depth', grouped = false) {
  const H = 4;
  const words = 5;
  const x = randomData(words * H, 11) as Float64Array;
  const data: Record<string, { feed: Feed; shape: (number | string)[]; type?: 'float' | 'int64' }> = {
    x: { feed: { data: x, dims: [words, H] }, shape: ['words', H] },
  };
  // Gold tree of each sentence: distances (path lengths) and depths.
  const sentences = [
    { rows: [0, 1, 2], dist: [0, 1, 2, 1, 0, 1, 2, 1, 0], depth: [1, 2, 3] },
    { rows: [3, 4], dist: [0, 1, 1, 0], depth: [1, 0] },
  ];
  const groups = grouped ? [[1], [0]] : [[0, 1]];
  const rows: number[] = [];
  const positions = new Array<number>(words).fill(-1);
  const sizes: number[] = [];
  groups.forEach((members, g) => {
    const len = Math.max(...members.map((k) => sentences[k]!.rows.length));
    const per = kind === 'distance' ? len * len : len;
    const target = new Float64Array(members.length * per);
    const mask = new Float64Array(members.length * per);
    const norm = new Float64Array(members.length);
    members.forEach((k, slot) => {
      const s = sentences[k]!;
      const n = s.rows.length;
      for (let i = 0; i < len; i++) {
        if (i < n) positions[s.rows[i]!] = rows.length;
        rows.push(i < n ? s.rows[i]! : 0); // padding reads row 0 (masked)
      }
      for (let i = 0; i < n; i++) {
        if (kind === 'distance') {
          for (let j = 0; j < n; j++) {
            target[slot * per + i * len + j] = s.dist[i * n + j]!;
            mask[slot * per + i * len + j] = 1;
          }
        } else {
          target[slot * per + i] = s.depth[i]!;
          mask[slot * per + i] = 1;
        }
      }
      norm[slot] = (kind === 'distance' ? n * n : n) * sentences.length; // the batch mean, as the sum of the groups
    });
    sizes.push(members.length * len);
    const dims = kind === 'distance' ? [members.length, len, len] : [members.length, len];
    const shape = kind === 'distance' ? [`b${g}`, `len${g}`, `len${g}`] : [`b${g}`, `len${g}`];
    data[`target${g}`] = { feed: { data: target, dims }, shape };
    data[`mask${g}`] = { feed: { data: mask, dims }, shape };
    data[`norm${g}`] = { feed: { data: norm, dims: [members.length] }, shape: [`b${g}`] };
    if (kind === 'distance') data[`eye${g}`] = { feed: { data: f64(Array.from({ length: len * len }, (_, i) => (i % (len + 1) === 0 ? 1 : 0))), dims: [len, len] }, shape: [`len${g}`, `len${g}`] };
  });
  data.rows = { feed: { data: i64(rows), dims: [rows.length] }, shape: ['p'], type: 'int64' };
  data.positions = { feed: { data: i64(positions), dims: [words] }, shape: ['words'], type: 'int64' };
  if (grouped) data.sizes = { feed: { data: i64(sizes), dims: [groups.length] }, shape: [groups.length], type: 'int64' };
  const build = (g: AutodiffGraph, v: Record<string, Value>) =>
    (kind === 'distance' ? structuralDistanceLoss : structuralDepthLoss)(g, v.proj!, {
      x: v.x!,
      rows: v.rows!,
      positions: v.positions!,
      ...(v.sizes ? { sizes: v.sizes } : {}),
      groups: groups.map((_, k) => ({ target: v[`target${k}`]!, mask: v[`mask${k}`]!, norm: v[`norm${k}`]!, ...(v[`eye${k}`] ? { eye: v[`eye${k}`]! } : {}) })),
    });
  return { H, data, sentences, build };
}

test('structural distance and depth losses (Gram form, unpadded X·B then gather, sentences in length groups): gradients and values', async () => {
  for (const kind of ['distance', 'depth'] as const) {
    for (const grouped of [false, true]) {
      const { H, data, sentences, build } = structuralBatch(kind, grouped);
      await checkGradients(`structural ${kind}${grouped ? ' in two groups' : ''}`, { wrt: { proj: { dims: [H, 3] } }, data, scalar: true, build });
      // The value against the reference's explicit-difference form, in plain JS.
      const proj = randomData(H * 3, 3) as Float64Array;
      const feeds: Record<string, Feed & { shape?: (number | string)[]; type?: 'float' | 'int64' }> = { proj: { data: proj, dims: [H, 3] } };
      for (const [k, d] of Object.entries(data)) feeds[k] = { ...d.feed, shape: d.shape, type: d.type };
      const [got] = await evaluate(build, feeds);
      const x = data.x.feed.data as Float64Array;
      const t = (w: number) => [0, 1, 2].map((r) => [0, 1, 2, 3].reduce((s, k) => s + x[w * H + k]! * proj[k * 3 + r]!, 0));
      let total = 0;
      for (const s of sentences) {
        const n = s.rows.length;
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const ti = t(s.rows[i]!);
          if (kind === 'distance') {
            for (let j = 0; j < n; j++) {
              const tj = t(s.rows[j]!);
              sum += Math.abs(ti.reduce((a, v, k) => a + (v - tj[k]!) ** 2, 0) - s.dist[i * n + j]!);
            }
          } else sum += Math.abs(ti.reduce((a, v) => a + v * v, 0) - s.depth[i]!);
        }
        total += sum / (kind === 'distance' ? n * n : n);
      }
      assert.ok(Math.abs(got! - total / 2) < 1e-9, `${kind}${grouped ? ' grouped' : ''}: ${got} vs ${total / 2}`);
    }
  }
});
