import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * The safetensors format (https://huggingface.co/docs/safetensors, "Format"): an 8-byte
 * little-endian u64 N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin,
 * end]}, "__metadata__": {str: str}}`, then the raw little-endian tensor bytes, offsets
 * relative to the end of the header. One reader and one writer for the whole project: weights,
 * fixture references, and the activation store's shards (readable by Python's safetensors).
 */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Byte offset where tensor data starts (8 + header length). */
  dataStart: number;
  fileSize: number;
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

const BYTES = DTYPE_BYTES;

/** Positional read filling `target` from byte `position`; returns the bytes read (fewer at end of file). */
export function readInto(fd: number, target: Uint8Array, position: number): number {
  let got = 0;
  while (got < target.length) {
    const n = readSync(fd, target, got, target.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readInto(fd, buf, position);
  return got === length ? buf : buf.subarray(0, got);
}

export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    return parseHeader(path, fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(path: string, fd: number, fileSize: number): SafetensorsHeader {
  const fix = 'the file is damaged or incomplete; download it again';
  if (fileSize < 8) throw new InputError('not a safetensors file: too short', { file: path, expected: 'at least 8 bytes', found: `${fileSize} bytes`, fix });
  const lenBuf = readExactly(fd, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > fileSize - 8 || headerLen > 100_000_000) {
    throw new InputError('safetensors header length runs past the end of the file', { file: path, offset: 0, expected: `a header of at most ${fileSize - 8} bytes`, found: `${headerLen} bytes`, fix });
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readExactly(fd, headerLen, 8).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new InputError('safetensors header is not valid JSON', { file: path, offset: 8, found: (err as Error).message, fix });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InputError('safetensors header is not a JSON object', { file: path, offset: 8, expected: '{"name": {"dtype", "shape", "data_offsets"}, ...}', found: Array.isArray(raw) ? 'an array' : typeof raw, fix });
  }
  const tensors = new Map<string, TensorInfo>();
  const dataStart = 8 + headerLen;
  let metadata: Record<string, string> = {};
  const spans: { name: string; begin: number; end: number; size: number }[] = [];
  for (const [name, value] of Object.entries(raw)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const shapeOk = v && Array.isArray(v.shape) && v.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
    const offsetsOk = v && Array.isArray(v.data_offsets) && v.data_offsets.length === 2 && v.data_offsets.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
    if (!v || typeof v.dtype !== 'string' || !shapeOk || !offsetsOk) {
      throw new InputError(`safetensors entry '${name}' is malformed`, { file: path, expected: `{dtype, shape: [non-negative integers], data_offsets: [begin, end]}`, found: JSON.stringify(value).slice(0, 200), fix });
    }
    if (!(v.dtype in BYTES)) {
      // A valid safetensors dtype we do not read is not damage: say so (issue 15 item 5).
      const known = v.dtype in SPEC_DTYPE_BITS;
      throw new InputError(known ? `unsupported dtype ${v.dtype} (tensor '${name}')` : `unknown dtype ${v.dtype} (tensor '${name}')`, {
        file: path,
        expected: `one of ${Object.keys(BYTES).join(', ')}`,
        found: v.dtype,
        fix: known ? 'convert the checkpoint to F32, F16 or BF16 (e.g. in Python: model.to(torch.float32).save_pretrained(DIR))' : 'this is not a dtype of the safetensors specification; the file is damaged: download it again',
      });
    }
    const [begin, end] = v.data_offsets as [number, number];
    const shape = v.shape as number[];
    const count = shape.reduce((a, b) => a * b, 1);
    spans.push({ name, begin, end, size: count * BYTES[v.dtype as SafetensorsDtype] });
    tensors.set(name, { dtype: v.dtype as SafetensorsDtype, shape, dataOffsets: [begin, end] });
  }
  validateLayout(path, spans, dataStart, fileSize, fix);
  return { tensors, metadata, dataStart, fileSize };
}

/** Bits per element of every dtype the safetensors specification names (safetensors/src/tensor.rs `Dtype`). */
const SPEC_DTYPE_BITS: Record<string, number> = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
};

/**
 * The layout rules of the reference implementation (huggingface/safetensors, safetensors/src/
 * tensor.rs `Metadata::validate` and `SafeTensors::read_metadata`): tensors sorted by
 * data_offsets must start at 0 and follow each other with no gap and no overlap (so no two
 * tensors alias the same bytes), each span's size equals shape × dtype size, and the last one
 * ends exactly at the end of the file. A truncated tensor is named as such.
 */
function validateLayout(path: string, spans: { name: string; begin: number; end: number; size: number }[], dataStart: number, fileSize: number, fix: string): void {
  for (const t of spans) {
    if (t.end < t.begin) throw new InputError(`tensor '${t.name}' has data_offsets that end before they begin`, { file: path, expected: 'data_offsets [begin, end] with begin <= end', found: `[${t.begin}, ${t.end}]`, fix });
    if (t.end - t.begin !== t.size) {
      throw new InputError(`tensor '${t.name}' has ${t.end - t.begin} bytes for its shape and dtype`, { file: path, expected: `${t.size} bytes`, found: `${t.end - t.begin} bytes (data_offsets [${t.begin}, ${t.end}])`, fix });
    }
    if (dataStart + t.end > fileSize) {
      throw new InputError(`tensor '${t.name}' is truncated`, { file: path, offset: dataStart + t.begin, expected: `data up to byte ${dataStart + t.end}`, found: `file ends at byte ${fileSize}`, fix });
    }
  }
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!;
    if (t.begin !== at) {
      const prev = sorted[i - 1];
      const what = t.begin < at ? `overlaps tensor '${prev!.name}' (bytes ${prev!.begin}..${prev!.end})` : `leaves a gap of ${t.begin - at} bytes after ${prev ? `tensor '${prev.name}'` : 'the header'}`;
      throw new InputError(`tensor '${t.name}' ${what}`, { file: path, expected: `data_offsets starting at byte ${at} (tensors contiguous, non-overlapping, in offset order)`, found: `[${t.begin}, ${t.end}]`, fix });
    }
    at = t.end;
  }
  if (dataStart + at !== fileSize) {
    throw new InputError('safetensors file has bytes no tensor covers', { file: path, offset: dataStart + at, expected: `the file to end at byte ${dataStart + at} (after the last tensor)`, found: `${fileSize - dataStart - at} more bytes`, fix });
  }
}

/** f16 → f32 (IEEE 754 half: 1 sign, 5 exponent, 10 mantissa bits). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
/** f32 → f16 bits, round to nearest even. */
export function f32ToF16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** Decode raw little-endian bytes of `dtype` into float32. */
export function toFloat32(bytes: Buffer, dtype: SafetensorsDtype): Float32Array {
  const n = bytes.byteLength / BYTES[dtype];
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      // Fast path: one bulk copy (this machine, like every platform Node supports here, is
      // little-endian, as the format is); the per-element loop cost seconds on bert-base.
      if (LITTLE_ENDIAN) out.set(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) {
        u32Scratch[0] = dv.getUint16(i * 2, true) << 16;
        out[i] = f32Scratch[0]!;
      }
      break;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      break;
  }
  return out;
}

export interface LoadedTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Values converted to float32 (integers exactly up to 2^24). */
  data: Float32Array;
}

/**
 * Read tensors (all, or those `wanted` selects) as float32. Reads tensor by tensor, so peak
 * memory is the float32 result plus one tensor's raw bytes.
 */
export function readSafetensors(
  path: string,
  wanted: (name: string) => boolean = () => true,
): { tensors: Map<string, LoadedTensor>; metadata: Record<string, string> } {
  const fd = openSync(path, 'r');
  try {
    const header = parseHeader(path, fd, fstatSync(fd).size);
    const tensors = new Map<string, LoadedTensor>();
    for (const [name, info] of header.tensors) {
      if (!wanted(name)) continue;
      const [begin, end] = info.dataOffsets;
      const bytes = readExactly(fd, end - begin, header.dataStart + begin);
      if (bytes.byteLength !== end - begin) {
        throw new InputError(`tensor '${name}' is truncated`, { file: path, offset: header.dataStart + begin, expected: `${end - begin} bytes`, found: `${bytes.byteLength} bytes`, fix: 'the file is damaged or incomplete; download it again' });
      }
      tensors.set(name, { dtype: info.dtype, shape: info.shape, data: toFloat32(bytes, info.dtype) });
    }
    return { tensors, metadata: header.metadata };
  } finally {
    closeSync(fd);
  }
}

export interface TensorToWrite {
  dtype: 'F32' | 'F16' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array | ArrayLike<number>;
}

/**
 * A tensor's bytes as the file holds them (little-endian). Float32 data on a little-endian host
 * is a view of the caller's array, not a copy (a store shard is 20 MB a layer), so it must not
 * change until written.
 */
export function tensorBytes(t: TensorToWrite): Buffer {
  const n = t.data.length;
  if (t.dtype === 'F32' && t.data instanceof Float32Array && LITTLE_ENDIAN) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const buf = Buffer.alloc(n * BYTES[t.dtype]);
  if (t.dtype === 'F32') {
    for (let i = 0; i < n; i++) buf.writeFloatLE(t.data[i]!, i * 4);
  } else if (t.dtype === 'F16') {
    for (let i = 0; i < n; i++) buf.writeUInt16LE(f32ToF16(t.data[i]!), i * 2);
  } else if (t.dtype === 'I32') {
    for (let i = 0; i < n; i++) buf.writeInt32LE(t.data[i]!, i * 4);
  } else {
    for (let i = 0; i < n; i++) buf.writeBigInt64LE(BigInt(t.data[i]!), i * 8);
  }
  return buf;
}

/**
 * The head of a safetensors file holding these tensors in this order (8-byte header length, then
 * the JSON header padded to 8 bytes with spaces, as the reference writer does), where its data
 * starts, and each tensor's [begin, end) byte range from there. A writer may then fill the data
 * in any order (src/extract/store.ts streams a shard's vectors as sentences are pooled).
 */
export function safetensorsLayout(tensors: readonly [string, { dtype: TensorToWrite['dtype']; shape: number[] }][], metadata?: Record<string, string>): { head: Buffer[]; dataStart: number; ranges: Map<string, [number, number]> } {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const ranges = new Map<string, [number, number]>();
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    ranges.set(name, [offset, offset + bytes]);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBuf.byteLength));
  return { head: [len, jsonBuf], dataStart: 8 + jsonBuf.byteLength, ranges };
}

/** Encode tensors as safetensors bytes (safetensorsLayout, then each tensor's tensorBytes). */
export function encodeSafetensors(tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
  return [...safetensorsLayout(entries, metadata).head, ...entries.map(([, t]) => tensorBytes(t))];
}

/** Write a safetensors file atomically (temporary name, then rename). */
export function writeSafetensors(path: string, tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
