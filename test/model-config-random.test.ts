import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BERT_BASE_UNCASED_CONFIG, parameterCount, parseConfig, readConfigFile } from '../src/model/config.js';
import { loadModel } from '../src/model/load.js';
import { lazyRandomWeights, randomWeights, releaseDrawnWeights } from '../src/model/random.js';
import { canonicalWeights } from '../src/model/weight-names.js';
import { InputError } from '../src/util/errors.js';
import { Ui } from '../src/util/ui.js';
import { sharedDir, tempDir } from './helpers.js';
import { TINY_CONFIG_JSON, tinyConfig } from './model-craft.js';

test('bert-base-uncased config.json parses to BERT_BASE_UNCASED_CONFIG; 109,482,240 parameters', () => {
  const c = readConfigFile(join(sharedDir, 'models', 'bert-base-uncased', 'config.json'));
  assert.deepEqual(c, BERT_BASE_UNCASED_CONFIG);
  // BertModel incl. pooler: the figure transformers reports for bert-base-uncased
  assert.equal(parameterCount(c), 109_482_240);
});

test('invalid configs are InputErrors naming file, line, expected and found', () => {
  const dir = tempDir();
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ hidden_size: 9 }, /hidden_size is not divisible by num_attention_heads[\s\S]*expected: hidden_size a multiple of num_attention_heads \(2\)[\s\S]*found: +hidden_size 9/],
    [{ hidden_act: 'relu' }, /'hidden_act'[\s\S]*found: +"relu"/],
    [{ position_embedding_type: 'relative_key' }, /'position_embedding_type'[\s\S]*expected: "absolute"/],
    [{ model_type: 'gpt2' }, /'model_type'/],
    [{ num_hidden_layers: -1 }, /'num_hidden_layers'[\s\S]*an integer >= 1/],
  ];
  for (const [patch, re] of cases) {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ ...TINY_CONFIG_JSON, ...patch }, null, 2));
    assert.throws(() => readConfigFile(file), (e: unknown) => e instanceof InputError && re.test(e.message) && e.message.startsWith(`${file}:`), JSON.stringify(patch));
  }
  const { vocab_size: _omit, ...noVocab } = TINY_CONFIG_JSON;
  assert.throws(() => parseConfig(noVocab, 'c.json'), /'vocab_size'[\s\S]*found: +missing/);
  writeFileSync(join(dir, 'bad.json'), '{\n  "hidden_size": 8,\n  oops\n}');
  assert.throws(() => readConfigFile(join(dir, 'bad.json')), (e: unknown) => e instanceof InputError && /bad\.json:3:\d+/.test(e.message));
});

test('random weights: BERT init, seeded, canonical names incl. MLM head', () => {
  const c = tinyConfig();
  const a = randomWeights(c, 1);
  const b = randomWeights(c, 1);
  const d = randomWeights(c, 2);
  assert.deepEqual([...a.keys()], canonicalWeights(c).map((s) => s.name));
  for (const [n, t] of a) assert.deepEqual(t.data, b.get(n)!.data, `${n} reproducible`);
  assert.notDeepEqual(a.get('encoder.layer.0.attention.self.query.weight')!.data, d.get('encoder.layer.0.attention.self.query.weight')!.data);
  assert.ok(a.get('embeddings.LayerNorm.weight')!.data.every((v) => v === 1));
  assert.ok(a.get('encoder.layer.1.output.LayerNorm.bias')!.data.every((v) => v === 0));
  assert.ok(a.get('cls.predictions.bias')!.data.every((v) => v === 0));
  assert.ok(a.get('embeddings.word_embeddings.weight')!.data.subarray(0, 8).every((v) => v === 0), 'padding row zeroed');
  // std 0.02 over a big-enough sample: bert-base's intermediate matrix
  const big = new Map([...randomWeights({ ...c, hiddenSize: 256, intermediateSize: 1024, numAttentionHeads: 4, numHiddenLayers: 1, vocabSize: 18 }, 3)]).get('encoder.layer.0.intermediate.dense.weight')!.data;
  let s = 0, s2 = 0;
  for (const v of big) { s += v; s2 += v * v; }
  const mean = s / big.length;
  const std = Math.sqrt(s2 / big.length - mean * mean);
  assert.ok(Math.abs(mean) < 2e-4, `mean ${mean}`);
  assert.ok(Math.abs(std - 0.02) < 2e-4, `std ${std}`);
});

test('lazy random weights: drawn on first read, the same values as randomWeights, every Map read works', () => {
  const c = tinyConfig();
  const eager = randomWeights(c, 7);
  const lazy = lazyRandomWeights(c, 7);
  // Nothing drawn until read: the map's own storage is still empty underneath.
  assert.equal(Map.prototype.get.call(lazy, 'embeddings.LayerNorm.weight'), undefined);
  assert.equal(lazy.size, eager.size);
  assert.deepEqual([...lazy.keys()], [...eager.keys()]);
  for (const [n, t] of lazy) assert.deepEqual(t.data, eager.get(n)!.data, n);
  assert.ok(lazyRandomWeights(c, 7).has('cls.predictions.bias'));
  assert.deepEqual(lazyRandomWeights(c, 7).get('encoder.layer.0.attention.self.query.weight')!.data, eager.get('encoder.layer.0.attention.self.query.weight')!.data);
  assert.equal([...lazyRandomWeights(c, 7).entries()].length, eager.size);
  assert.equal(new Map(lazyRandomWeights(c, 7)).size, eager.size);
});

test('lazy random weights let go once released and are drawn again to the same values; a changed or eager map is kept', () => {
  const c = tinyConfig();
  const eager = randomWeights(c, 7);
  const lazy = lazyRandomWeights(c, 7);
  const first = lazy.get('encoder.layer.0.output.dense.weight')!;
  assert.equal(releaseDrawnWeights(lazy), true);
  // Released: the map's own storage is empty again, until the next read draws everything anew.
  assert.equal(Map.prototype.get.call(lazy, 'embeddings.LayerNorm.weight'), undefined);
  const again = lazy.get('encoder.layer.0.output.dense.weight')!;
  assert.notEqual(again, first, 'a fresh draw, not the released arrays');
  for (const [n, t] of lazy) assert.deepEqual(t.data, eager.get(n)!.data, n);
  assert.equal(releaseDrawnWeights(eager), false, 'loaded or eager weights cannot be drawn again');
  assert.equal(eager.size, lazy.size);
  const changed = lazyRandomWeights(c, 7);
  changed.set('embeddings.LayerNorm.bias', { data: new Float32Array(c.hiddenSize).fill(3), shape: [c.hiddenSize] });
  assert.equal(releaseDrawnWeights(changed), false);
  assert.equal(changed.get('embeddings.LayerNorm.bias')!.data[0], 3, 'a changed map keeps its change');
});

test('random:CONFIG loads a labelled random-init control of that shape', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...TINY_CONFIG_JSON, vocab_size: 30522 }));
  const m = await loadModel(`random:${join(dir, 'config.json')}`, { seed: 5 });
  assert.equal(m.source.randomInit, true);
  assert.match(m.source.id, /^random-init\(/);
  assert.equal(m.source.format, 'random');
  assert.equal(m.config.hiddenSize, 8);
  assert.equal(m.tokenizer.vocabSize, 30522, 'packaged bert-base-uncased vocab');
  assert.deepEqual(m.tokenizer.encodeText('electrodynamics').tokens, ['[CLS]', 'electro', '##dy', '##nami', '##cs', '[SEP]']);
  const again = await loadModel(`random:${join(dir, 'config.json')}`, { seed: 5 });
  assert.equal(again.source.weightsSha256, m.source.weightsSha256);
  const other = await loadModel(`random:${join(dir, 'config.json')}`, { seed: 6 });
  assert.notEqual(other.source.weightsSha256, m.source.weightsSha256);
  // a config whose vocab is smaller than the tokenizer's is refused
  writeFileSync(join(dir, 'small.json'), JSON.stringify(TINY_CONFIG_JSON));
  await assert.rejects(loadModel(`random:${join(dir, 'small.json')}`, {}), /vocab_size >= 30522/);
});

test('no --model and bert-base-uncased not to be had: random-init fallback with a prominent warning', async () => {
  process.env.HF_HOME = tempDir('bert-probe-hf-');
  delete process.env.HF_HUB_CACHE;
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
  const m = await loadModel(undefined, { offline: true, ui: new Ui({}, stream), seed: 0 });
  assert.equal(m.source.id, 'random-init(bert-base-uncased)');
  assert.equal(m.source.randomInit, true);
  assert.equal(m.weights.get('embeddings.word_embeddings.weight')!.data.length, 30522 * 768);
  assert.match(lines.join(''), /warning: the default model bert-base-uncased cannot be loaded.*RANDOMLY INITIALISED/s);
  // but a named model that cannot be had is an error, not a fallback
  await assert.rejects(loadModel('bert-base-uncased', { offline: true }), InputError);
});
