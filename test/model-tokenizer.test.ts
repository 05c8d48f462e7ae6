import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTokenizer, packagedBertVocab, tokenizerFromVocab } from '../src/model/tokenizer.js';
import { readSafetensorsHeader } from '../src/model/safetensors.js';
import { InputError } from '../src/util/errors.js';
import { fixturesDir, sharedDir, tempDir } from './helpers.js';

const bertBase = join(sharedDir, 'models', 'bert-base-uncased');

test('WordPiece is greedy longest-match with ## continuations (real bert-base-uncased vocab)', async () => {
  const tok = await loadTokenizer(bertBase);
  assert.deepEqual(tok.encodeText('electrodynamics').tokens, ['[CLS]', 'electro', '##dy', '##nami', '##cs', '[SEP]']);
  assert.deepEqual(tok.encodeText('unaffable').tokens.slice(1, -1), ['una', '##ffa', '##ble']);
  assert.equal(tok.encodeText('x').ids[0], tok.clsId);
  assert.equal(tok.encodeText('x').ids.at(-1), tok.sepId);
});

test('tokens stored in the fixture reference metadata come out exactly', async () => {
  const tok = await loadTokenizer(join(fixturesDir, 'tiny-bert'));
  const meta = readSafetensorsHeader(join(fixturesDir, 'tiny-bert-reference.safetensors')).metadata;
  const sentences = JSON.parse(meta.sentences!) as string[];
  const tokens = JSON.parse(meta.tokens!) as string[][];
  assert.equal(sentences.length, tokens.length);
  sentences.forEach((s, i) => assert.deepEqual(tok.encodeText(s).tokens, tokens[i], s));
});

test('words over 100 characters and words with no pieces become [UNK] with a span', async () => {
  const tok = await loadTokenizer(bertBase);
  const enc = tok.encodeWords(['The', 'a'.repeat(101), '\u200b', "don't", '[MASK]']);
  assert.deepEqual(enc.tokens, ['[CLS]', 'the', '[UNK]', '[UNK]', 'don', "'", 't', '[MASK]', '[SEP]']);
  assert.deepEqual(enc.wordSpans, [[1, 2], [2, 3], [3, 4], [4, 7], [7, 8]]);
  assert.equal(enc.ids[7], tok.maskId);
  // exactly 100 characters is still split into pieces, not [UNK]
  assert.notEqual(tok.encodeWords(['a'.repeat(100)]).tokens[1], '[UNK]');
});

test('BasicTokenizer details: CJK split (incl. outside the BMP), accents, punctuation', async () => {
  const tok = await loadTokenizer(bertBase);
  const t = tok as unknown as { splitWords(s: string): string[] };
  assert.deepEqual(t.splitWords('Héllo,WORLD! 中文 \u{20000}x'), ['hello', ',', 'world', '!', '中', '文', '\u{20000}', 'x']);
});

test('fingerprint carries the vocab sha256; the packaged vocab equals bert-base-uncased', async () => {
  const tok = await loadTokenizer(bertBase);
  const sha = createHash('sha256').update(readFileSync(join(bertBase, 'vocab.txt'))).digest('hex');
  assert.match(tok.fingerprint, new RegExp(`vocab_sha256=${sha}`));
  assert.match(tok.fingerprint, /lower=1/);
  const packaged = tokenizerFromVocab(packagedBertVocab());
  assert.equal(packaged.fingerprint, tok.fingerprint);
  assert.equal(packaged.vocabSize, 30522);
});

test('cased vocab without lower-casing keeps case and accents', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'vocab.txt'), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'Hé', '##llo', 'he'].join('\n') + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false }));
  const tok = await loadTokenizer(dir);
  assert.deepEqual(tok.encodeText('Héllo hello').tokens, ['[CLS]', 'Hé', '##llo', 'he', '##llo', '[SEP]']);
});

test('tokenizer.json is used when present', async () => {
  const dir = tempDir();
  const json = {
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content, id) => ({ id, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4, zz: 5, '##top': 6 } },
  };
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  const tok = await loadTokenizer(dir);
  assert.deepEqual(tok.encodeText('ZZtop').tokens, ['[CLS]', 'zz', '##top', '[SEP]']);
  assert.equal(tok.vocabSize, 7);
  const { decoder: _d, ...broken } = json;
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(broken));
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof InputError && e.message.startsWith(join(dir, 'tokenizer.json')));
});

test('a folder without tokenizer files is an InputError naming it', async () => {
  const dir = tempDir();
  await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof InputError && e.message.includes(dir) && /vocab\.txt/.test(e.message));
});
