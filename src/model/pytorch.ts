import { open as openFile, readFile } from 'node:fs/promises';
import yauzl from 'yauzl';
import { InputError } from '../util/errors.js';
import type { LoadedTensor, SafetensorsDtype } from './safetensors.js';
import { toFloat32 } from './safetensors.js';
import { readPickleAt, readTorchPickle, type TensorRef } from './pickle.js';

/**
 * pytorch_model.bin as torch.save writes it since PyTorch 1.6: a zip archive holding
 * `<name>/data.pkl` (the pickled state dict, read by the restricted reader in pickle.ts) and
 * one entry `<name>/data/<key>` per storage with its raw little-endian bytes
 * (torch/serialization.py, _save / _load). Tensors are strided views of those storages.
 */

const STORAGE_DTYPES: Record<string, SafetensorsDtype> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};
const ELEMENT_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

async function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Buffer> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function isZip(path: string): Promise<boolean> {
  const fh = await openFile(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b.readUInt32LE(0) === 0x04034b50;
  } finally {
    await fh.close();
  }
}

/** Copy a strided view out of a storage's float32 values into a dense row-major array. */
function gather(storage: Float32Array, offset: number, size: number[], stride: number[]): Float32Array {
  const n = size.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const contiguous = size.every((_, d) => size[d] === 1 || stride[d] === size.slice(d + 1).reduce((a, b) => a * b, 1));
  if (contiguous) {
    out.set(storage.subarray(offset, offset + n));
    return out;
  }
  const idx = new Array<number>(size.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = offset;
    for (let d = 0; d < size.length; d++) src += idx[d]! * stride[d]!;
    out[i] = storage[src]!;
    for (let d = size.length - 1; d >= 0; d--) {
      if (++idx[d]! < size[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

const DAMAGED ='the file is damaged or incomplete; download it again';

/** Turn the unpickled state dict into tensors, fetching each storage once. */
async function materialize(
  root: unknown,
  path: string,
  storageData: (key: string, numel: number, dtype: SafetensorsDtype, tensor: string) => Promise<Float32Array>,
): Promise<Map<string, LoadedTensor>> {
  if (!(root instanceof Map)) {
    throw new InputError('the checkpoint is not a state dict', { file: path, expected: 'a dict of tensor name → tensor', found: Array.isArray(root) ? 'a list/tuple' : typeof root, fix: 'save model.state_dict(), not the model object' });
  }
  const storages = new Map<string, Float32Array>();
  const out = new Map<string, LoadedTensor>();
  for (const [name, value] of root) {
    const t = value as TensorRef;
    if (!t || t.kind !== 'tensor') continue; // non-tensor entries (e.g. version numbers) carry no weights
    const dtype = STORAGE_DTYPES[t.storage.storageType];
    if (!dtype) throw new InputError(`tensor '${name}' has an unsupported storage type ${t.storage.storageType}`, { file: path, expected: Object.keys(STORAGE_DTYPES).join(', '), found: t.storage.storageType, fix: 'convert the checkpoint to float32 safetensors' });
    let data = storages.get(t.storage.key);
    if (!data) {
      data = await storageData(t.storage.key, t.storage.numel, dtype, String(name));
      storages.set(t.storage.key, data);
    }
    const offset = t.offset + (t.storage.viewOffset ?? 0);
    const n = t.size.reduce((a, b) => a * b, 1);
    const last = offset + t.size.reduce((acc, s, d) => acc + (s - 1) * t.stride[d]!, 0);
    if (n > 0 && (offset < 0 || last >= data.length)) {
      throw new InputError(`tensor '${name}' reaches past its storage`, { file: path, expected: `indices below ${data.length}`, found: `up to ${last}`, fix: DAMAGED });
    }
    out.set(String(name), { dtype, shape: t.size, data: n === 0 ? new Float32Array(0) : gather(data, offset, t.size, t.stride) });
  }
  return out;
}

/**
 * The legacy format torch.save wrote before 1.6 (torch/serialization.py, _legacy_save): five
 * pickles in a row (magic number 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info, the
 * state dict, the list of storage keys), then each storage in key order as an int64 element
 * count followed by its raw little-endian bytes.
 */
async function readLegacyTorch(path: string): Promise<Map<string, LoadedTensor>> {
  const data = await readFile(path);
  const notTorch = () =>
    new InputError('not a PyTorch checkpoint', {
      file: path,
      expected: 'a torch.save file (zip since PyTorch 1.6, or the legacy pickle sequence)',
      found: `a file starting with ${data.subarray(0, 8).toString('hex')}`,
      fix: 'download the checkpoint again, or use its model.safetensors',
    });
  if (data.length < 16 || data[0] !== 0x80 || data[2] !== 0x8a) throw notTorch();
  const magic = readPickleAt(data, path, 0);
  if (magic.value !== 0x1950a86a20f9469cfc6cn) throw notTorch();
  const version = readPickleAt(data, path, magic.end);
  if (version.value !== 1001) throw new InputError('unsupported legacy PyTorch protocol version', { file: path, expected: '1001', found: String(version.value), fix: 're-save the checkpoint with a recent PyTorch or convert it to safetensors' });
  const sysInfo = readPickleAt(data, path, version.end);
  const info = sysInfo.value instanceof Map ? sysInfo.value : new Map();
  if (info.get('little_endian') === false) throw new InputError('big-endian PyTorch checkpoint', { file: path, expected: 'little_endian True', found: 'False', fix: 'convert the checkpoint to safetensors on a big-endian machine' });
  const root = readPickleAt(data, path, sysInfo.end);
  const keys = readPickleAt(data, path, root.end);
  if (!Array.isArray(keys.value)) throw notTorch();
  const offsets = new Map<string, number>();
  let pos = keys.end;
  // Storage sizes are only known once the dict is read; walk the blobs in key order.
  const numels = new Map<string, { numel: number; dtype: SafetensorsDtype }>();
  if (root.value instanceof Map) {
    for (const v of root.value.values()) {
      const t = v as TensorRef;
      if (t && t.kind === 'tensor') numels.set(t.storage.key, { numel: t.storage.numel, dtype: STORAGE_DTYPES[t.storage.storageType] ?? 'F32' });
    }
  }
  for (const k of keys.value as unknown[]) {
    const key = String(k);
    if (pos + 8 > data.length) throw new InputError(`storage ${key} is truncated`, { file: path, offset: pos, expected: 'an 8-byte element count', found: 'end of file', fix: DAMAGED });
    const count = Number(data.readBigInt64LE(pos));
    const s = numels.get(key);
    const bytes = count * ELEMENT_BYTES[s?.dtype ?? 'F32'];
    offsets.set(key, pos + 8);
    pos += 8 + bytes;
    if (pos > data.length) throw new InputError(`storage ${key} is truncated`, { file: path, offset: pos - bytes, expected: `${bytes} bytes`, found: `${data.length - (pos - bytes)} bytes`, fix: DAMAGED });
  }
  return materialize(root.value, path, async (key, numel, dtype, tensor) => {
    const at = offsets.get(key);
    if (at === undefined) throw new InputError(`tensor '${tensor}': storage ${key} is not in the file`, { file: path, expected: `storage ${key}`, found: 'no such storage', fix: DAMAGED });
    return toFloat32(data.subarray(at, at + numel * ELEMENT_BYTES[dtype]), dtype);
  });
}

/** Read every tensor of a PyTorch zip checkpoint as float32, under the names the file uses. */
export async function readPytorchBin(path: string): Promise<Map<string, LoadedTensor>> {
  const damaged = DAMAGED;
  if (!(await isZip(path))) return readLegacyTorch(path);
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw new InputError(`cannot read the zip archive: ${(err as Error).message}`, { file: path, expected: 'a complete zip archive', found: (err as Error).message, fix: damaged });
  }
  try {
    const entries = new Map<string, yauzl.Entry>();
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: yauzl.Entry) => {
        entries.set(e.fileName, e);
        zip.readEntry();
      });
      zip.on('end', () => resolve());
      zip.on('error', reject);
      zip.readEntry();
    }).catch((err: Error) => {
      throw new InputError(`cannot read the zip archive: ${err.message}`, { file: path, expected: 'a complete zip archive', found: err.message, fix: damaged });
    });
    const pklName = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (!pklName) {
      throw new InputError('the zip archive has no data.pkl', { file: path, expected: '<archive>/data.pkl as torch.save writes it', found: [...entries.keys()].slice(0, 5).join(', ') || 'no entries', fix: damaged });
    }
    const prefix = pklName.slice(0, -'data.pkl'.length);
    const byteorder = entries.get(`${prefix}byteorder`);
    if (byteorder && (await readEntry(zip, byteorder)).toString('latin1').trim() !== 'little') {
      throw new InputError('big-endian PyTorch checkpoint', { file: path, expected: 'byteorder "little"', found: 'big', fix: 're-save the checkpoint on a little-endian machine or convert it to safetensors' });
    }
    const root = readTorchPickle(await readEntry(zip, entries.get(pklName)!), `${path}:${pklName}`);
    return await materialize(root, path, async (key, numel, dtype, tensor) => {
      const entryName = `${prefix}data/${key}`;
      const entry = entries.get(entryName);
      if (!entry) throw new InputError(`tensor '${tensor}': storage entry ${entryName} is missing`, { file: path, expected: entryName, found: 'no such zip entry', fix: damaged });
      const raw = await readEntry(zip, entry);
      const want = numel * ELEMENT_BYTES[dtype];
      if (raw.length < want) throw new InputError(`tensor '${tensor}' is truncated`, { file: path, expected: `${want} bytes in ${entryName}`, found: `${raw.length} bytes`, fix: damaged });
      return toFloat32(raw.subarray(0, want), dtype);
    });
  } finally {
    zip.close();
  }
}
