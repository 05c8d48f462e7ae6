/** Every op of the probe autodiff (src/probes/graph): its gradient against finite differences. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkGradients } from './graph-check.js';
import type { Dim } from '../src/probes/graph/types.js';

const i64 = (v: number[]) => BigInt64Array.from(v.map(BigInt));

test('matmul: 2-D, batched 3-D, 3-D times 2-D, broadcast batch', async () => {
  await checkGradients('matmul 2d', { wrt: { a: { dims: [3, 4] }, b: { dims: [4, 5] } }, build: (g, v) => g.matmul(v.a!, v.b!) });
  await checkGradients('matmul 3d', { wrt: { a: { dims: [2, 3, 4] }, b: { dims: [2, 4, 2] } }, build: (g, v) => g.matmul(v.a!, v.b!) });
  await checkGradients('matmul 3d·2d', { wrt: { a: { dims: [2, 3, 4], shape: ['b', 'n', 4] }, b: { dims: [4, 2] } }, build: (g, v) => g.matmul(v.a!, v.b!) });
  // The Gram rule (a·aᵀ) and a product of a value with a transpose of something else.
  await checkGradients('gram 3d', { wrt: { a: { dims: [2, 3, 4] } }, build: (g, v) => g.matmul(v.a!, g.transpose(v.a!, [0, 2, 1])) });
  await checkGradients('gram 2d', { wrt: { a: { dims: [3, 4] } }, build: (g, v) => g.matmul(v.a!, g.transpose(v.a!, [1, 0])) });
  await checkGradients('a·bᵀ', { wrt: { a: { dims: [3, 4] }, b: { dims: [2, 4] } }, build: (g, v) => g.matmul(v.a!, g.transpose(v.b!, [1, 0])) });
  await checkGradients('matmul broadcast', { wrt: { a: { dims: [1, 3, 4] }, b: { dims: [2, 4, 2] } }, build: (g, v) => g.matmul(v.a!, v.b!) });
});

test('add, sub, mul, div with broadcasting (static and symbolic dims)', async () => {
  await checkGradients('add', { wrt: { a: { dims: [2, 3, 4] }, b: { dims: [3, 1] } }, build: (g, v) => g.add(v.a!, v.b!) });
  await checkGradients('add symbolic', { wrt: { a: { dims: [5, 3], shape: ['n', 3] }, b: { dims: [3] } }, build: (g, v) => g.add(v.a!, v.b!) });
  await checkGradients('sub', { wrt: { a: { dims: [4] }, b: { dims: [2, 1] } }, build: (g, v) => g.sub(v.a!, v.b!) });
  await checkGradients('mul x·x', { wrt: { a: { dims: [2, 3] } }, build: (g, v) => g.mul(v.a!, v.a!) });
  // A reduction's expanded ḡ meeting a broadcasting product (the expand is elided).
  await checkGradients('Σx² then ×', { wrt: { a: { dims: [2, 3] }, b: { dims: [2, 1] } }, scalar: true, build: (g, v) => g.reduceSum(g.mul(g.reduceSum(g.mul(v.a!, v.a!), [1], true), v.b!), [0, 1]) });
  await checkGradients('mul', { wrt: { a: { dims: [2, 3] }, b: { dims: [1, 3] } }, build: (g, v) => g.mul(v.a!, v.b!) });
  await checkGradients('div', { wrt: { a: { dims: [2, 3] }, b: { dims: [3], range: [0.5, 2] } }, build: (g, v) => g.div(v.a!, v.b!) });
  await checkGradients('scalar loss', { wrt: { a: { dims: [] } }, scalar: true, build: (g, v) => g.mul(v.a!, v.a!) });
});

test('neg, abs, sign, pow, sqrt, exp, log', async () => {
  await checkGradients('neg', { wrt: { x: { dims: [3, 2] } }, build: (g, v) => g.neg(v.x!) });
  await checkGradients('abs', { wrt: { x: { dims: [6], data: [-2, -1, -0.5, 0.3, 1, 2] } }, build: (g, v) => g.abs(v.x!) });
  // sign has zero gradient: x·sign(x) = |x| must differentiate as sign(x).
  const r = await checkGradients('sign', { wrt: { x: { dims: [4], data: [-2, -0.5, 0.5, 3] } }, scalar: true, build: (g, v) => g.reduceSum(g.mul(v.x!, g.sign(v.x!)), [0]) });
  assert.deepEqual([...r.x!], [-1, -1, 1, 1]);
  await checkGradients('pow 2', { wrt: { x: { dims: [5] } }, build: (g, v) => g.pow(v.x!, 2) });
  await checkGradients('pow 3', { wrt: { x: { dims: [5] } }, build: (g, v) => g.pow(v.x!, 3) });
  await checkGradients('pow 0.5', { wrt: { x: { dims: [5], range: [0.5, 2] } }, build: (g, v) => g.pow(v.x!, 0.5) });
  await checkGradients('sqrt', { wrt: { x: { dims: [5], range: [0.5, 2] } }, build: (g, v) => g.sqrt(v.x!) });
  await checkGradients('exp', { wrt: { x: { dims: [5] } }, build: (g, v) => g.exp(v.x!) });
  await checkGradients('log', { wrt: { x: { dims: [5], range: [0.5, 2] } }, build: (g, v) => g.log(v.x!) });
});

test('relu, tanh, sigmoid, erf', async () => {
  await checkGradients('relu', { wrt: { x: { dims: [6], data: [-2, -1, -0.5, 0.3, 1, 2] } }, build: (g, v) => g.relu(v.x!) });
  await checkGradients('tanh', { wrt: { x: { dims: [3, 3] } }, build: (g, v) => g.tanh(v.x!) });
  await checkGradients('sigmoid', { wrt: { x: { dims: [3, 3] } }, build: (g, v) => g.sigmoid(v.x!) });
  // onnxruntime's CPU provider has Erf in float32 only: checked there, step 1e-2, tolerance 2e-2.
  await checkGradients('erf', { precision: 'float32', wrt: { x: { dims: [3, 3] } }, build: (g, v) => g.erf(v.x!) });
});

test('softmax and logSoftmax', async () => {
  await checkGradients('softmax', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.softmax(v.x!, 1) });
  await checkGradients('softmax last', { wrt: { x: { dims: [2, 5] } }, build: (g, v) => g.softmax(v.x!, -1) });
  await checkGradients('logSoftmax', { wrt: { x: { dims: [3, 4] } }, build: (g, v) => g.logSoftmax(v.x!, -1) });
});

test('reduceSum and reduceMean (keepdims, symbolic dims)', async () => {
  await checkGradients('reduceSum', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.reduceSum(v.x!, [1]) });
  await checkGradients('reduceSum keep', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.reduceSum(v.x!, [0, 2], true) });
  await checkGradients('reduceMean', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.reduceMean(v.x!, [0, 2]) });
  await checkGradients('reduceMean symbolic', { wrt: { x: { dims: [5, 3], shape: ['n', 3] } }, build: (g, v) => g.reduceMean(v.x!, [0]) });
  await checkGradients('reduceSumSquare', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.reduceSumSquare(v.x!, [1]) });
  await checkGradients('reduceSumSquare keep symbolic', { wrt: { x: { dims: [5, 3], shape: ['n', 3] } }, build: (g, v) => g.reduceSumSquare(v.x!, [1], true) });
});

test('reshape, transpose, unsqueeze', async () => {
  await checkGradients('reshape', { wrt: { x: { dims: [2, 6] } }, build: (g, v) => g.reshape(v.x!, [3, 4]) });
  await checkGradients('reshape -1 symbolic', { wrt: { x: { dims: [4, 6], shape: ['n', 6] } }, build: (g, v) => g.reshape(v.x!, [-1, 3]) });
  await checkGradients('transpose', { wrt: { x: { dims: [2, 3, 4] } }, build: (g, v) => g.transpose(v.x!, [2, 0, 1]) });
  await checkGradients('unsqueeze', { wrt: { x: { dims: [2, 3] } }, build: (g, v) => g.unsqueeze(v.x!, [0, 2]) });
});

test('concat and slice (static and symbolic)', async () => {
  await checkGradients('concat', { wrt: { a: { dims: [2, 3] }, b: { dims: [2, 1] } }, build: (g, v) => g.concat([v.a!, v.b!], 1) });
  await checkGradients('concat symbolic', { wrt: { a: { dims: [3, 2], shape: ['n', 2] }, b: { dims: [2, 2], shape: ['m', 2] } }, build: (g, v) => g.concat([v.a!, v.b!], 0) });
  await checkGradients('slice', { wrt: { x: { dims: [4, 5] } }, build: (g, v) => g.slice(v.x!, [1, -3], [3, 100], [0, 1]) });
  await checkGradients('slice symbolic', { wrt: { x: { dims: [6, 3], shape: ['n', 3] } }, build: (g, v) => g.slice(v.x!, [1], [-1], [0]) });
});

test('gather (repeated indices accumulate; axis 0 and 1) and where', async () => {
  await checkGradients('gather', {
    wrt: { x: { dims: [4, 3] } },
    data: { idx: { feed: { data: i64([2, 0, 2, 3, 2, 1]), dims: [2, 3] }, shape: [2, 3], type: 'int64' } },
    build: (g, v) => g.gather(v.x!, v.idx!),
  });
  await checkGradients('gather axis 1', {
    wrt: { x: { dims: [2, 4, 3] } },
    data: { idx: { feed: { data: i64([3, 3, 0]), dims: [3] }, shape: ['k'], type: 'int64' } },
    build: (g, v) => g.gather(v.x!, v.idx!, 1),
  });
  // Rows 0..3 placed at positions 1, 4, 0, 3 of six; positions 2 and 5 are padding reading row 0,
  // masked out of the loss: the gradient is ḡ gathered back by the inverse index.
  const pad = { idx: { feed: { data: i64([2, 0, 0, 3, 1, 0]), dims: [6] }, shape: ['p'] as Dim[], type: 'int64' as const }, inv: { feed: { data: i64([1, 4, 0, 3]), dims: [4] }, shape: ['w'] as Dim[], type: 'int64' as const }, mask: { feed: { data: Float64Array.from([1, 1, 0, 1, 1, 0]), dims: [6, 1] }, shape: ['p', 1] as Dim[] } };
  await checkGradients('gatherOnce (padding masked)', { wrt: { x: { dims: [4, 3], shape: ['w', 3] } }, data: pad, build: (g, v) => g.mul(g.gatherOnce(v.x!, v.idx!, v.inv!), v.mask!) });
  const once = await checkGradients('gatherOnce squared', { wrt: { x: { dims: [4, 3], shape: ['w', 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] } }, data: pad, build: (g, v) => g.mul(g.mul(g.gatherOnce(v.x!, v.idx!, v.inv!), v.mask!), g.gatherOnce(v.x!, v.idx!, v.inv!)) });
  const general = await checkGradients('gather squared', { wrt: { x: { dims: [4, 3], shape: ['w', 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] } }, data: pad, build: (g, v) => g.mul(g.mul(g.gather(v.x!, v.idx!), v.mask!), g.gather(v.x!, v.idx!)) });
  assert.deepEqual(once.x, general.x, 'gatherOnce and gather give one gradient where the padding is masked');
  // Rows 2 | 4 | 1 of seven; the middle part is unused (its ḡ is zeros), the others weighted differently.
  const sizes = { sizes: { feed: { data: i64([2, 4, 1]), dims: [3] }, shape: [3] as Dim[], type: 'int64' as const } };
  await checkGradients('split', {
    wrt: { x: { dims: [7, 3], shape: ['n', 3] } },
    data: sizes,
    build: (g, v) => {
      const [a, , c] = g.split(v.x!, v.sizes!, 3);
      return g.concat([g.mul(a!, a!), g.mul(c!, g.constant([3]))], 0);
    },
  });
  await checkGradients('split axis 1, every part used twice', {
    wrt: { x: { dims: [2, 7] } },
    data: sizes,
    build: (g, v) => {
      const parts = g.split(v.x!, v.sizes!, 3, 1);
      return g.concat([...parts.map((p) => g.mul(p, p)), ...parts], 1);
    },
  });
  await checkGradients('where', {
    wrt: { a: { dims: [2, 3] }, b: { dims: [3] } },
    data: { c: { feed: { data: Uint8Array.from([1, 0, 1, 0, 0, 1]), dims: [2, 3] }, shape: [2, 3], type: 'bool' } },
    build: (g, v) => g.where(v.c!, v.a!, v.b!),
  });
});

test('layerNorm and dropout (mask fed; identity when not training)', async () => {
  await checkGradients('layerNorm', { wrt: { x: { dims: [3, 5], shape: ['n', 5] }, gamma: { dims: [5] }, beta: { dims: [5] } }, build: (g, v) => g.layerNorm(v.x!, v.gamma!, v.beta!, 1e-5) });
  const mask = Float64Array.from([2, 0, 2, 2, 0, 2]);
  const r = await checkGradients('dropout', {
    wrt: { x: { dims: [2, 3] } },
    data: { m: { feed: { data: mask, dims: [2, 3] }, shape: [2, 3] } },
    scalar: true,
    build: (g, v) => {
      g.input('unused', [1]);
      return g.reduceSum(g.dropout(v.x!, 0.5, 'm'), [0, 1]);
    },
  }).catch((e: Error) => e);
  // 'm' is declared twice above (as data and by dropout): the graph must refuse that.
  assert.ok(r instanceof Error && /declared twice/.test(r.message));
  const r2 = await checkGradients('dropout', {
    wrt: { x: { dims: [2, 3] } },
    scalar: true,
    build: (g, v) => g.reduceSum(g.dropout(v.x!, 0.5, 'm'), [0, 1]),
    data: {},
    training: true,
  }).catch((e: Error) => e);
  assert.ok(r2 instanceof Error && /'m' was not fed/.test(r2.message), String(r2));
  const ev = await checkGradients('dropout eval', { wrt: { x: { dims: [2, 3] } }, scalar: true, training: false, build: (g, v) => g.reduceSum(g.dropout(v.x!, 0.5, 'm'), [0, 1]) });
  assert.deepEqual([...ev.x!], [1, 1, 1, 1, 1, 1]);
});

test('device cuda without the CUDA provider installed: a clear error (exit 2), not a native log', async (t) => {
  const { existsSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const { dirname, join } = await import('node:path');
  const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  if (existsSync(join(bin, 'libonnxruntime_providers_cuda.so'))) return t.skip('the CUDA provider is installed here');
  const { compileProbe } = await import('../src/probes/probe-model.js');
  const err = await compileProbe({ name: 'c', params: [{ name: 'w', shape: [1], init: 'ones' }], inputs: [], build: (g, p) => ({ loss: g.reduceSum(p.w!, [0]), outputs: {} }) }, { device: 'cuda' }).catch((e: unknown) => e);
  assert.ok(err instanceof Error && (err as { exitCode?: number }).exitCode === 2 && /CUDA/.test(err.message), String(err));
});
