import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { parseConfig } from '../src/model/config.js';
import { randomWeights } from '../src/model/random.js';
import { writeSafetensors, type TensorToWrite } from '../src/model/safetensors.js';
import type { BertConfig, WeightMap } from '../src/model/types.js';
import { repoRoot } from './helpers.js';

/** Hand-made checkpoints for the model-loading tests (built at test time, nothing copied from ../shared). */

export const tinyVocabFile = join(repoRoot, 'test', 'fixtures', 'model', 'vocab.txt');

export const TINY_CONFIG_JSON = {
  architectures: ['BertForMaskedLM'],
  model_type: 'bert',
  hidden_act: 'gelu',
  hidden_size: 8,
  intermediate_size: 16,
  num_attention_heads: 2,
  num_hidden_layers: 2,
  max_position_embeddings: 16,
  type_vocab_size: 2,
  vocab_size: 18,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  position_embedding_type: 'absolute',
};

export function tinyConfig(): BertConfig {
  return parseConfig(TINY_CONFIG_JSON, 'config.json');
}

/** Write config.json + vocab.txt (+ weights as safetensors under `rename`d names) into `dir`. */
export function writeTinyCheckpoint(
  dir: string,
  opts: { weights?: WeightMap; rename?: (canonical: string) => string | null; extra?: Record<string, TensorToWrite>; config?: object; noWeights?: boolean } = {},
): WeightMap {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.config ?? TINY_CONFIG_JSON, null, 2));
  copyFileSync(tinyVocabFile, join(dir, 'vocab.txt'));
  const weights = opts.weights ?? randomWeights(tinyConfig(), 7);
  if (!opts.noWeights) {
    const out: Record<string, TensorToWrite> = {};
    for (const [name, t] of weights) {
      const n = opts.rename ? opts.rename(name) : name;
      if (n) out[n] = { dtype: 'F32', shape: t.shape, data: t.data };
    }
    Object.assign(out, opts.extra ?? {});
    writeSafetensors(join(dir, 'model.safetensors'), out, { format: 'pt' });
  }
  return weights;
}

/** A zip with stored (uncompressed) entries, as torch.save writes them. PKWARE APPNOTE 4.3. */
export function zipStored(entries: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, nameBuf, data);
    central.push(cd, nameBuf);
    offset += 30 + nameBuf.length + data.length;
  }
  const cdBuf = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}

/** Minimal pickle writer (protocol 2 opcodes, CPython Lib/pickle.py) for hand-made state dicts. */
export const P = {
  proto: () => Buffer.from([0x80, 2]),
  mark: () => Buffer.from('('),
  str: (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58;
    h.writeUInt32LE(b.length, 1);
    return Buffer.concat([h, b]);
  },
  int: (n: number) => {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(n, 1);
    return b;
  },
  global: (module: string, name: string) => Buffer.from(`c${module}\n${name}\n`, 'latin1'),
  tuple: () => Buffer.from('t'),
  emptyTuple: () => Buffer.from(')'),
  emptyDict: () => Buffer.from('}'),
  setitems: () => Buffer.from('u'),
  reduce: () => Buffer.from('R'),
  binpersid: () => Buffer.from('Q'),
  false: () => Buffer.from([0x89]),
  stop: () => Buffer.from('.'),
};

/** Pickle of {name: float32 tensor} as torch.save writes a state dict (one storage per tensor); `legacy`: pre-1.6 persistent ids with view_metadata None. */
export function statePickle(tensors: { name: string; key: string; numel: number; size: number[]; stride: number[]; offset?: number }[], legacy = false): Buffer {
  const parts: Buffer[] = [P.proto(), P.emptyDict(), P.mark()];
  for (const t of tensors) {
    parts.push(P.str(t.name), P.global('torch._utils', '_rebuild_tensor_v2'), P.mark());
    parts.push(P.mark(), P.str('storage'), P.global('torch', 'FloatStorage'), P.str(t.key), P.str('cpu'), P.int(t.numel), ...(legacy ? [Buffer.from('N')] : []), P.tuple(), P.binpersid());
    parts.push(P.int(t.offset ?? 0));
    parts.push(P.mark(), ...t.size.map(P.int), P.tuple());
    parts.push(P.mark(), ...t.stride.map(P.int), P.tuple());
    parts.push(P.false(), P.global('collections', 'OrderedDict'), P.emptyTuple(), P.reduce());
    parts.push(P.tuple(), P.reduce());
  }
  parts.push(P.setitems(), P.stop());
  return Buffer.concat(parts);
}

export function f32Bytes(values: number[] | Float32Array): Buffer {
  const a = Float32Array.from(values);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** PROTO 2 + LONG1 of torch's legacy magic number 0x1950a86a20f9469cfc6c + STOP. */
export function legacyMagicPickle(): Buffer {
  const n = 0x1950a86a20f9469cfc6cn;
  const b = Buffer.alloc(10);
  for (let i = 0; i < 10; i++) b[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return Buffer.concat([P.proto(), Buffer.from([0x8a, 10]), b, P.stop()]);
}

/**
 * A checkpoint in which one head carries the signal the MLM loss needs (issue 12): layer 2,
 * head 1 (1-based) attends uniformly to every token (Q = K = 0) and copies the word dimensions
 * of each token (V = identity on its 16 dimensions, output dense α · identity back), so at a
 * masked position it brings in the words around it. Word embeddings are one-hot (words on
 * dimensions 0-12, [MASK] 20, [CLS] 21, [SEP] 22, [UNK] 23), positions and token types zero;
 * the MLM transform is the identity shifted into GELU's linear range (LayerNorm removes the
 * shift) and the decoder is tied, so the logit of word w is the hidden value on w's dimension.
 * Everything else keeps its random init (N(0, 0.02)), so the other heads matter little.
 * On sentences that repeat one word, masking the crafted head leaves [MASK] with nothing to go on.
 */
export const DECISIVE_CONFIG_JSON = { ...TINY_CONFIG_JSON, hidden_size: 32, intermediate_size: 16, num_attention_heads: 2, num_hidden_layers: 2 };
export const DECISIVE_HEAD = { layer: 2, head: 1 };

export function decisiveHeadWeights(alpha = 4): WeightMap {
  const config = parseConfig(DECISIVE_CONFIG_JSON, 'config.json');
  const w = randomWeights(config, 11);
  const H = config.hiddenSize;
  const d = H / config.numAttentionHeads;
  const set = (name: string, f: (data: Float32Array) => void) => f(w.get(name)!.data);
  set('embeddings.word_embeddings.weight', (e) => {
    e.fill(0);
    const dim = (id: number) => (id >= 5 ? id - 5 : ({ 1: 23, 2: 21, 3: 22, 4: 20 } as Record<number, number>)[id]);
    for (let id = 1; id < config.vocabSize; id++) e[id * H + dim(id)!] = 1;
  });
  set('embeddings.position_embeddings.weight', (e) => e.fill(0));
  set('embeddings.token_type_embeddings.weight', (e) => e.fill(0));
  const p = `encoder.layer.${DECISIVE_HEAD.layer - 1}.attention`;
  const h0 = (DECISIVE_HEAD.head - 1) * d;
  for (const part of ['query', 'key', 'value']) {
    set(`${p}.self.${part}.weight`, (m) => {
      m.fill(0, h0 * H, (h0 + d) * H);
      if (part === 'value') for (let r = 0; r < d; r++) m[(h0 + r) * H + r] = 1;
    });
    set(`${p}.self.${part}.bias`, (b) => b.fill(0, h0, h0 + d));
  }
  set(`${p}.output.dense.weight`, (m) => {
    for (let r = 0; r < H; r++) for (let c = h0; c < h0 + d; c++) m[r * H + c] = r === c - h0 ? alpha : 0;
  });
  set('cls.predictions.transform.dense.weight', (m) => {
    m.fill(0);
    for (let r = 0; r < H; r++) m[r * H + r] = 1;
  });
  set('cls.predictions.transform.dense.bias', (b) => b.fill(10));
  set('cls.predictions.bias', (b) => b.fill(0));
  return w;
}
