/**
 * Issue 15 item 5: safetensors headers are validated as the reference implementation does
 * (huggingface/safetensors tensor.rs Metadata::validate): overlapping, aliased, gapped or
 * out-of-file data_offsets are refused (exit 2 through the CLI), and a valid-but-unsupported
 * dtype says "unsupported dtype X" rather than "damaged".
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readSafetensorsHeader, writeSafetensors } from '../src/model/safetensors.js';
import { InputError } from '../src/util/errors.js';
import { fixturesDir, runCli, tempDir } from './helpers.js';

function raw(header: Record<string, unknown>, dataBytes: number): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), Buffer.alloc(dataBytes, 1)]);
}

function refused(header: Record<string, unknown>, dataBytes: number, re: RegExp): void {
  const p = join(tempDir(), 'x.safetensors');
  writeFileSync(p, raw(header, dataBytes));
  assert.throws(() => readSafetensorsHeader(p), (e: unknown) => e instanceof InputError && re.test(e.message) && e.message.includes(p), `${JSON.stringify(header)} refused with ${re}`);
}

test('aliased tensors (same data_offsets) are refused', () => {
  refused({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 16, /overlaps tensor/);
});

test('overlapping tensors are refused', () => {
  refused({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, 24, /overlaps tensor 'a'/);
});

test('a gap, bytes past the last tensor, a reversed span, a size mismatch are refused', () => {
  refused({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, 16, /gap of 8 bytes/);
  refused({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 16, /bytes no tensor covers/);
  refused({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8, /end before they begin/);
  refused({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, 16, /has 16 bytes for its shape/);
  refused({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }, 16, /malformed/);
});

test('valid-but-unsupported dtypes say "unsupported dtype X"; unknown ones say unknown', () => {
  refused({ a: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, 4, /unsupported dtype F8_E4M3/);
  refused({ a: { dtype: 'C64', shape: [2], data_offsets: [0, 16] } }, 16, /unsupported dtype C64/);
  refused({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 16] } }, 16, /unknown dtype Q4/);
});

test('files we write, and the fixtures, still pass', () => {
  const p = join(tempDir(), 'ok.safetensors');
  writeSafetensors(p, { a: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) }, b: { dtype: 'F16', shape: [5], data: new Float32Array(5) } }, { k: 'v' });
  assert.equal(readSafetensorsHeader(p).tensors.size, 2);
  assert.ok(readSafetensorsHeader(join(fixturesDir, 'tiny-bert', 'model.safetensors')).tensors.size > 10);
});

test('a checkpoint whose tensors alias each other: model info exits 2 (it used to load with wrong vectors)', () => {
  const dir = join(tempDir(), 'aliased');
  cpSync(join(fixturesDir, 'tiny-bert'), dir, { recursive: true });
  const st = join(dir, 'model.safetensors');
  const h = readSafetensorsHeader(st);
  // Point the second tensor at the first one's bytes (same size) and keep the file as it is.
  const size = (n: string) => h.tensors.get(n)!.dataOffsets[1] - h.tensors.get(n)!.dataOffsets[0];
  const names = [...h.tensors.keys()];
  const first = names.find((n) => names.some((m) => m !== n && size(m) === size(n)))!;
  const twin = names.find((m) => m !== first && size(m) === size(first));
  assert.ok(first && twin, 'two tensors of one size in the fixture');
  const a = h.tensors.get(first)!;
  const buf = Buffer.from(readFileSync(st));
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { data_offsets: number[] }>;
  header[twin!]!.data_offsets = [...a.dataOffsets];
  let json = JSON.stringify(header);
  json += ' '.repeat(Math.max(0, len - json.length));
  assert.equal(json.length, len, 'header rewritten in place');
  buf.write(json, 8, 'utf8');
  writeFileSync(st, buf);
  const r = runCli(['model', 'info', dir]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /overlaps tensor|gap of/);
});
