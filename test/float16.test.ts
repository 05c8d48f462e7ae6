/**
 * float16 and bfloat16 conversions, bit-exact (issue 16): hand-computed bit patterns for round to
 * nearest even, ties, subnormals, overflow, infinities and NaN; an arithmetic reference
 * (float16-reference.ts) over a million inputs; and numpy's astype(float16) where python3 has
 * numpy (CI installs it). A tolerance of 1e-3·|v| accepts truncation; these do not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { f16ToF32, f32ToF16, toFloat32 } from '../src/model/safetensors.js';
import { mulberry32 } from '../src/util/random.js';
import { nearestHalf } from './float16-reference.js';
import { hasNumpy, skipUnless, tempDir } from './helpers.js';

const hex = (h: number) => `0x${h.toString(16).padStart(4, '0')}`;

// value (exactly a float32 unless noted) → float16 bits; each checked by hand and by numpy.
const TABLE: [number, number, string][] = [
  [0, 0x0000, 'zero'],
  [-0, 0x8000, 'negative zero keeps its sign'],
  [1, 0x3c00, 'one'],
  [-2, 0xc000, 'negative'],
  [65504, 0x7bff, 'largest finite'],
  [65519, 0x7bff, 'below the midpoint to infinity'],
  [65520, 0x7c00, 'midpoint 65504/65536: ties to even, which is infinity'],
  [1e6, 0x7c00, 'overflow'],
  [Infinity, 0x7c00, '+infinity'],
  [-Infinity, 0xfc00, '-infinity'],
  [2 ** -14, 0x0400, 'smallest normal'],
  [2 ** -24, 0x0001, 'smallest subnormal'],
  [2 ** -25, 0x0000, 'tie between 0 and the smallest subnormal: to even (0)'],
  [1.5 * 2 ** -25, 0x0001, 'above that tie'],
  [3 * 2 ** -25, 0x0002, 'subnormal tie between 1 and 2: to 2'],
  [5 * 2 ** -25, 0x0002, 'subnormal tie between 2 and 3: to 2'],
  [1023 * 2 ** -24, 0x03ff, 'largest subnormal'],
  [1023.5 * 2 ** -24, 0x0400, 'tie between the largest subnormal and the smallest normal: to even (normal)'],
  [1 + 2 ** -11, 0x3c00, 'tie between 0x3c00 and 0x3c01: to even (down)'],
  [1 + 3 * 2 ** -11, 0x3c02, 'tie between 0x3c01 and 0x3c02: to even (up)'],
  [1 + 2 ** -11 + 2 ** -23, 0x3c01, 'one float32 ulp above the tie: up (truncation gives 0x3c00)'],
  [Math.fround(0.1), 0x2e66, '0.1 (float32)'],
  [Math.fround(1 / 3), 0x3555, '1/3 (float32)'],
  [Math.fround(-2 / 3), 0xb955, '-2/3 (float32)'],
  [Math.fround(6e-5), 0x03ef, 'a subnormal, rounded up'],
  [Math.fround(-2.5e-6), 0x802a, 'a negative subnormal'],
  [Math.fround(1e-8), 0x0000, 'underflow to zero'],
  [65535, 0x7c00, 'rounds past 65504 to infinity'],
];

test('f32ToF16: hand-computed bits (ties to even, subnormals, overflow, infinities, signed zero)', () => {
  for (const [v, bits, why] of TABLE) assert.equal(hex(f32ToF16(v)), hex(bits), `${v}: ${why}`);
  for (const nan of [NaN, -NaN]) {
    const h = f32ToF16(nan);
    assert.equal(h & 0x7c00, 0x7c00, 'NaN: exponent all ones');
    assert.notEqual(h & 0x03ff, 0, 'NaN: mantissa non-zero (not infinity)');
  }
});

test('f16ToF32: hand-computed values of bit patterns', () => {
  const cases: [number, number][] = [
    [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
    [0x3c01, 1 + 2 ** -10], [0x2e66, 0.0999755859375], [0x7c00, Infinity], [0xfc00, -Infinity], [0x8001, -(2 ** -24)],
  ];
  for (const [h, v] of cases) assert.equal(f16ToF32(h), v, hex(h));
  assert.ok(Object.is(f16ToF32(0x8000), -0), '0x8000 is -0');
  for (const h of [0x7c01, 0x7e00, 0xfe00, 0x7fff]) assert.ok(Number.isNaN(f16ToF32(h)), `${hex(h)} is NaN`);
  // Every finite half survives half → float → half unchanged.
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && h & 0x03ff) continue;
    if (f32ToF16(f16ToF32(h)) !== h) assert.fail(`${hex(h)} → ${f16ToF32(h)} → ${hex(f32ToF16(f16ToF32(h)))}`);
  }
});

/** Inputs that probe rounding: every half's midpoint to its neighbour and ±1 float32 ulp around it, plus random float32 bit patterns. */
function probeInputs(random: number): Float32Array {
  const out: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 0x7c00; h++) {
    const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2; // exact in float32
    f[0] = mid;
    const bits = u[0]!;
    for (const d of [-1, 0, 1]) {
      u[0] = bits + d;
      out.push(f[0]!, -f[0]!);
    }
  }
  const rand = mulberry32(16);
  for (let i = 0; i < random; i++) {
    u[0] = Math.floor(rand() * 2 ** 32) >>> 0;
    out.push(f[0]!);
  }
  return Float32Array.from(out);
}

test('f32ToF16 equals the arithmetic reference on every midpoint, its float32 neighbours and random inputs', () => {
  const xs = probeInputs(200_000);
  // The reference itself agrees with the hand-computed table.
  for (const [v, bits] of TABLE) assert.ok(Object.is(nearestHalf(v), f16ToF32(bits)), `reference at ${v}`);
  for (const x of xs) {
    if (Number.isNaN(x)) continue;
    const got = f16ToF32(f32ToF16(x));
    if (!Object.is(got, nearestHalf(x))) assert.fail(`${x}: ${got}, nearest half ${nearestHalf(x)}`);
  }
});

test('float16 and numpy agree bit for bit (astype(float16) both ways, all 65536 halves)', { skip: skipUnless('python3 with numpy', hasNumpy()) }, () => {
  const dir = tempDir();
  const xs = probeInputs(100_000);
  writeFileSync(join(dir, 'in.f32'), Buffer.from(xs.buffer));
  const py = `
import sys, numpy as np
d = sys.argv[1]
x = np.fromfile(d + '/in.f32', dtype='<f4')
with np.errstate(over='ignore'):
    x.astype('<f2').view('<u2').tofile(d + '/out.u2')
np.arange(65536, dtype='<u4').astype('<u2').view('<f2').astype('<f4').view('<u4').tofile(d + '/halves.u4')`;
  const r = spawnSync('python3', ['-c', py, dir], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const theirs = new Uint16Array(readFileSync(join(dir, 'out.u2')).buffer.slice(0));
  assert.equal(theirs.length, xs.length);
  for (let i = 0; i < xs.length; i++) {
    const mine = f32ToF16(xs[i]!);
    // NaN: numpy keeps payload bits, f32ToF16 writes a quiet NaN; both must be NaN.
    if (Number.isNaN(xs[i]!)) assert.ok((mine & 0x7c00) === 0x7c00 && mine & 0x3ff && (theirs[i]! & 0x7c00) === 0x7c00 && theirs[i]! & 0x3ff);
    else if (mine !== theirs[i]) assert.fail(`${xs[i]}: ${hex(mine)}, numpy ${hex(theirs[i]!)}`);
  }
  // half → float32 for every pattern, read through the safetensors F16 decoder.
  const halves = Buffer.alloc(0x20000);
  for (let h = 0; h < 0x10000; h++) halves.writeUInt16LE(h, h * 2);
  const decoded = toFloat32(halves, 'F16');
  const expected = new Float32Array(readFileSync(join(dir, 'halves.u4')).buffer.slice(0));
  for (let h = 0; h < 0x10000; h++) {
    if (Number.isNaN(expected[h]!)) assert.ok(Number.isNaN(decoded[h]!), hex(h));
    else if (!Object.is(decoded[h], expected[h])) assert.fail(`${hex(h)}: ${decoded[h]}, numpy ${expected[h]}`);
  }
});

test('BF16 reads are bit-exact: the stored 16 bits are the top of the float32', () => {
  const cases: [number, number][] = [
    [0x3f80, 1], [0xc000, -2], [0x7f80, Infinity], [0xff80, -Infinity], [0x0001, 2 ** -133], [0x0080, 2 ** -126], [0x7f7f, 3.3895313892515355e38], [0x3dcd, 0.10009765625],
  ];
  const buf = Buffer.alloc(cases.length * 2 + 4);
  cases.forEach(([b], i) => buf.writeUInt16LE(b, i * 2));
  buf.writeUInt16LE(0x8000, cases.length * 2);
  buf.writeUInt16LE(0x7fc0, cases.length * 2 + 2);
  const got = toFloat32(buf, 'BF16');
  cases.forEach(([b, v], i) => assert.equal(got[i], v, hex(b)));
  assert.ok(Object.is(got[cases.length], -0), '0x8000 is -0');
  assert.ok(Number.isNaN(got[cases.length + 1]!), '0x7fc0 is NaN');
});
