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

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
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
  const tensors = new Map<string, TensorInfo>();
  const dataStart = 8 + headerLen;
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (name === '__metadata__') {
      metadata = (value ?? {}) as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!v || typeof v.dtype !== 'string' || !(v.dtype in BYTES) || !Array.isArray(v.shape) || !Array.isArray(v.data_offsets)) {
      throw new InputError(`safetensors entry '${name}' is malformed`, { file: path, expected: `{dtype: one of ${Object.keys(BYTES).join('/')}, shape, data_offsets}`, found: JSON.stringify(value).slice(0, 200), fix });
    }
    const [begin, end] = v.data_offsets;
    const count = v.shape.reduce((a, b) => a * b, 1);
    if (end - begin !== count * BYTES[v.dtype as SafetensorsDtype]) {
      throw new InputError(`tensor '${name}' has ${end - begin} bytes for shape [${v.shape.join(', ')}] ${v.dtype}`, { file: path, expected: `${count * BYTES[v.dtype as SafetensorsDtype]} bytes`, found: `${end - begin} bytes`, fix });
    }
    if (dataStart + end > fileSize) {
      throw new InputError(`tensor '${name}' is truncated`, { file: path, offset: dataStart + begin, expected: `data up to byte ${dataStart + end}`, found: `file ends at byte ${fileSize}`, fix });
    }
    tensors.set(name, { dtype: v.dtype as SafetensorsDtype, shape: v.shape, dataOffsets: [begin, end] });
  }
  return { tensors, metadata, dataStart, fileSize };
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

/** Encode tensors as safetensors bytes (header padded to 8 bytes with spaces, as the reference writer does). */
export function encodeSafetensors(tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const bodies: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    const buf = Buffer.alloc(n * BYTES[t.dtype]);
    if (t.dtype === 'F32') {
      const src = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
      Buffer.from(src.buffer, src.byteOffset, src.byteLength).copy(buf);
    } else if (t.dtype === 'F16') {
      for (let i = 0; i < n; i++) buf.writeUInt16LE(f32ToF16(t.data[i]!), i * 2);
    } else if (t.dtype === 'I32') {
      for (let i = 0; i < n; i++) buf.writeInt32LE(t.data[i]!, i * 4);
    } else {
      for (let i = 0; i < n; i++) buf.writeBigInt64LE(BigInt(t.data[i]!), i * 8);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + buf.byteLength] };
    offset += buf.byteLength;
    bodies.push(buf);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBuf.byteLength));
  return [len, jsonBuf, ...bodies];
}

/** Write a safetensors file atomically (temporary name, then rename). */
export function writeSafetensors(path: string, tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
