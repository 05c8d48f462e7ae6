import { InputError } from '../util/errors.js';

/**
 * A restricted reader for the pickle `torch.save` writes (Python's pickle protocol 2, plus the
 * protocol 3/4 opcodes a newer torch may emit). It interprets the opcode stream into plain JS
 * values and never calls anything: the only globals it accepts are the few names a state dict
 * needs, each mapped to a data-only JS stand-in below; any other global (`os.system`,
 * `builtins.eval`, `torch.storage._load_from_bytes`, ...) is refused with an InputError naming
 * it, before anything else happens. Opcode semantics: CPython Lib/pickle.py and
 * Lib/pickletools.py.
 */

/** A storage that torch.save wrote as a separate zip entry, referenced by a persistent id. */
export interface StorageRef {
  kind: 'storage';
  /** e.g. 'FloatStorage' */
  storageType: string;
  key: string;
  location: string;
  numel: number;
  /** Legacy format only: the storage is a view starting this many elements into the root storage. */
  viewOffset?: number;
}

/** What _rebuild_tensor_v2 describes: a strided view of a storage. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

interface GlobalRef {
  kind: 'global';
  name: string;
}

interface MarkObj {
  kind: 'mark';
}

/** Globals a torch state dict needs, each with what it stands for here. */
export const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...['Float', 'Half', 'BFloat16', 'Double', 'Long', 'Int', 'Short', 'Char', 'Byte', 'Bool'].map((t) => `torch.${t}Storage`),
]);

const MARK: MarkObj = { kind: 'mark' };

function refuse(file: string, offset: number, what: string, expected: string): never {
  throw new InputError(`refusing to load pickle: ${what}`, {
    file,
    offset,
    expected,
    found: what,
    fix: 'this checkpoint asks to run code on load; bert-probe never does. Use a model.safetensors version of the model, or re-save the state dict with torch.save(model.state_dict(), ...) from a trusted environment',
  });
}

function asInt(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`expected an integer, found ${typeof v}`);
}

function callGlobal(file: string, offset: number, fn: unknown, args: unknown): unknown {
  if (!fn || typeof fn !== 'object' || (fn as GlobalRef).kind !== 'global') {
    refuse(file, offset, 'REDUCE on something that is not an allowed global', 'a call of one of: ' + [...ALLOWED_GLOBALS].join(', '));
  }
  const name = (fn as GlobalRef).name;
  const a = args as unknown[];
  switch (name) {
    case 'collections.OrderedDict':
      return new Map();
    case 'torch._utils._rebuild_tensor': // (storage, offset, size, stride), torch < 1.0
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset0, size, stride] = a;
      if (!storage || (storage as StorageRef).kind !== 'storage') throw new Error('_rebuild_tensor_v2 without a storage');
      return { kind: 'tensor', storage: storage as StorageRef, offset: asInt(offset0), size: (size as unknown[]).map(asInt), stride: (stride as unknown[]).map(asInt) } satisfies TensorRef;
    }
    case 'torch._utils._rebuild_parameter':
      return a[0];
    default:
      return refuse(file, offset, `call of ${name}`, 'a call of collections.OrderedDict, torch._utils._rebuild_tensor_v2 or torch._utils._rebuild_parameter');
  }
}

/**
 * Interpret a torch.save pickle. Returns the unpickled top-level object (dicts as Map, tuples
 * and lists as arrays, tensors as TensorRef).
 */
export function readTorchPickle(data: Buffer, file: string): unknown {
  return readPickleAt(data, file, 0).value;
}

/** Read one pickle starting at byte `start`; `end` is the byte after its STOP (the legacy format chains pickles). */
export function readPickleAt(data: Buffer, file: string, start: number): { value: unknown; end: number } {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = start;
  const need = (n: number) => {
    if (pos + n > data.length) throw new InputError('pickle is truncated', { file, offset: pos, expected: `${n} more bytes`, found: `end of data at byte ${data.length}`, fix: 'the checkpoint is damaged; download it again' });
  };
  const u8 = () => (need(1), data[pos++]!);
  const u16 = () => (need(2), (pos += 2), data.readUInt16LE(pos - 2));
  const i32 = () => (need(4), (pos += 4), data.readInt32LE(pos - 4));
  const u32 = () => (need(4), (pos += 4), data.readUInt32LE(pos - 4));
  const bytes = (n: number) => (need(n), (pos += n), data.subarray(pos - n, pos));
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) need(data.length + 1 - pos);
    const s = data.toString('latin1', pos, end);
    pos = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    for (let i = stack.length - 1; i >= 0; i--) {
      if (stack[i] === MARK) {
        const items = stack.slice(i + 1);
        stack.length = i;
        return items;
      }
    }
    throw new InputError('pickle is malformed: no MARK on the stack', { file, offset: pos, expected: 'a MARK before this opcode', found: 'none', fix: 'the checkpoint is damaged; download it again' });
  };
  const pop = () => {
    if (stack.length === 0) throw new InputError('pickle is malformed: stack underflow', { file, offset: pos, expected: 'a value on the stack', found: 'an empty stack', fix: 'the checkpoint is damaged; download it again' });
    return stack.pop();
  };
  const top = () => stack[stack.length - 1];
  const global = (module: string, name: string, at: number): GlobalRef => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) refuse(file, at, `global '${full}'`, 'only ' + [...ALLOWED_GLOBALS].join(', '));
    return { kind: 'global', name: full };
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof Map)) throw new Error('SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const long = (b: Buffer): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const at = pos;
    const op = u8();
    try {
      switch (op) {
        case 0x80: u8(); break; // PROTO
        case 0x95: bytes(8); break; // FRAME (protocol 4): frames are just grouping
        case 0x2e: return { value: pop(), end: pos }; // STOP
        case 0x28: stack.push(MARK); break; // MARK
        case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
        case 0x5d: stack.push([]); break; // EMPTY_LIST
        case 0x29: stack.push([]); break; // EMPTY_TUPLE
        case 0x4e: stack.push(null); break; // NONE
        case 0x88: stack.push(true); break; // NEWTRUE
        case 0x89: stack.push(false); break; // NEWFALSE
        case 0x4b: stack.push(u8()); break; // BININT1
        case 0x4d: stack.push(u16()); break; // BININT2
        case 0x4a: stack.push(i32()); break; // BININT
        case 0x8a: stack.push(long(bytes(u8()))); break; // LONG1
        case 0x47: need(8); stack.push(data.readDoubleBE(pos)); pos += 8; break; // BINFLOAT
        case 0x58: stack.push(bytes(u32()).toString('utf8')); break; // BINUNICODE
        case 0x8c: stack.push(bytes(u8()).toString('utf8')); break; // SHORT_BINUNICODE
        case 0x54: stack.push(bytes(i32()).toString('latin1')); break; // BINSTRING
        case 0x55: stack.push(bytes(u8()).toString('latin1')); break; // SHORT_BINSTRING
        case 0x43: stack.push(Buffer.from(bytes(u8()))); break; // SHORT_BINBYTES
        case 0x42: stack.push(Buffer.from(bytes(u32()))); break; // BINBYTES
        case 0x71: memo.set(u8(), top()); break; // BINPUT
        case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
        case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
        case 0x68: // BINGET
        case 0x6a: { // LONG_BINGET
          const k = op === 0x68 ? u8() : u32();
          if (!memo.has(k)) throw new Error(`memo key ${k} not set`);
          stack.push(memo.get(k));
          break;
        }
        case 0x74: stack.push(popMark()); break; // TUPLE
        case 0x85: stack.push([pop()]); break; // TUPLE1
        case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
        case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
        case 0x6c: stack.push(popMark()); break; // LIST
        case 0x61: { const v = pop(); (top() as unknown[]).push(v); break; } // APPEND
        case 0x65: { const items = popMark(); (top() as unknown[]).push(...items); break; } // APPENDS
        case 0x64: { const items = popMark(); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
        case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
        case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
        case 0x63: { const module = line(); const name = line(); stack.push(global(module, name, at)); break; } // GLOBAL
        case 0x93: { const name = pop(); const module = pop(); stack.push(global(String(module), String(name), at)); break; } // STACK_GLOBAL
        case 0x52: { const args = pop(); const fn = pop(); stack.push(callGlobal(file, at, fn, args)); break; } // REDUCE
        case 0x62: { pop(); break; } // BUILD: the only objects here are OrderedDicts; their state (_metadata) is not needed
        case 0x51: { // BINPERSID
          const pid = pop() as unknown[];
          if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
            refuse(file, at, `persistent id ${JSON.stringify(pid)?.slice(0, 80)}`, "('storage', torch.<T>Storage, key, location, numel)");
          }
          const t = pid[1] as GlobalRef;
          if (!t || t.kind !== 'global' || !/^torch\.\w+Storage$/.test(t.name)) refuse(file, at, `storage type ${JSON.stringify(t)}`, 'a torch.<T>Storage type');
          const ref: StorageRef = { kind: 'storage', storageType: t.name.slice('torch.'.length), key: String(pid[2]), location: String(pid[3]), numel: asInt(pid[4]) };
          // Legacy (pre-1.6) format: a 6th element (view_key, offset, view_size) makes a view of the root storage.
          const view = pid[5] as unknown[] | null | undefined;
          if (Array.isArray(view)) ref.viewOffset = asInt(view[1]);
          stack.push(ref);
          break;
        }
        default:
          refuse(file, at, `pickle opcode 0x${op.toString(16).padStart(2, '0')}`, 'only the opcodes torch.save writes for a state dict');
      }
    } catch (err) {
      if (err instanceof InputError) throw err;
      throw new InputError(`pickle is malformed: ${(err as Error).message}`, { file, offset: at, expected: 'a state dict written by torch.save', found: `opcode 0x${op.toString(16)}`, fix: 'the checkpoint is damaged or not a PyTorch state dict; download it again or use model.safetensors' });
    }
  }
}
