import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import type { Encoding, Tokenizer } from '../model/types.js';
import { poolWords, wordAttention } from '../extract/align.js';
import { forwardSentences, type SentenceForward } from '../extract/forward.js';
import { InputError } from '../util/errors.js';
import { attnName, layerName, parseLayerSpec } from '../util/names.js';
import { action, addModelOptions, addOutputOptions, isOffline, withExample, type ModelOptions, type OutputOptions } from './common.js';

/**
 * `bert-probe embed`: contextual vectors of raw text as JSONL on stdout, one object per input
 * sentence: {"text", "tokens", "words", "layers": {"layer.N": [[...] per word]}} (a word's
 * vector = mean of its pieces); `--pieces` gives one vector per piece incl. [CLS]/[SEP];
 * `--attentions` adds {"attentions": {"attn.N": [heads][T][T]}} at the same granularity (word
 * level: Clark et al. 2019, with [CLS] and [SEP] as positions 0 and W+1). Texts longer than the
 * model's positions get stitched windowed vectors ("windows": n) and "attentions": null.
 * Values are float32 printed to 8 significant digits.
 */
interface EmbedCliOptions extends ModelOptions, OutputOptions {
  file?: string;
  layers: string;
  pieces?: boolean;
  attentions?: boolean;
}

/** Chunk of inputs run together (bounded memory for long --file inputs). */
const CHUNK = 64;

export function readInputs(texts: string[], file: string | undefined): { text: string; where: string }[] {
  const out = texts.map((text, i) => ({ text, where: `argument ${i + 1}` }));
  if (file !== undefined) {
    let content: string;
    try {
      content = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new InputError('cannot read --file', { file, expected: 'a UTF-8 text file, one sentence per line (- for stdin)', found: (err as NodeJS.ErrnoException).code ?? String(err), fix: 'check the path' });
    }
    content.split(/\r?\n/).forEach((line, i) => {
      if (line.trim()) out.push({ text: line, where: `${file}:${i + 1}` });
    });
  }
  if (out.length === 0) throw new InputError('no text to embed', { expected: 'TEXT arguments or --file F (one sentence per line)', found: file ? `no non-empty line in ${file}` : 'neither', fix: 'bert-probe embed "The cat sat." or --file sentences.txt' });
  return out;
}

/** Words of raw text as the tokenizer split them (BasicTokenizer), so spans line up. */
export function encodeRaw(tok: Tokenizer, text: string): { enc: Encoding; words: string[] } {
  const split = (tok as Tokenizer & { splitWords?: (t: string) => string[] }).splitWords;
  if (typeof split === 'function') {
    const words = split.call(tok, text);
    return { enc: tok.encodeWords(words), words };
  }
  const enc = tok.encodeText(text);
  return { enc, words: enc.wordSpans.map(([s, e]) => enc.tokens.slice(s, e).map((t, i) => (i ? t.replace(/^##/, '') : t)).join('')) };
}

const round = (v: number): number => Number(v.toPrecision(8));
const rows = (a: Float32Array, n: number, h: number): number[][] => Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * h, (i + 1) * h), round));
const cube = (a: Float32Array, heads: number, n: number): number[][][] => Array.from({ length: heads }, (_, h) => rows(a.subarray(h * n * n, (h + 1) * n * n), n, n));

export function register(program: Command): void {
  const cmd = program
    .command('embed [text...]')
    .description('contextual vectors of text as JSONL on stdout (one object per sentence)')
    .option('-f, --file <file>', 'read sentences from a file, one per line (- for stdin)')
    .option('-l, --layers <spec>', 'layers: all, 0-12, 4,8,12, -1 = last', '-1')
    .option('--pieces', 'one vector per word piece (incl. [CLS] and [SEP]) instead of per word')
    .option('--attentions', 'add attention maps of the same layers (1..L) at the same granularity');
  addModelOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe embed "The keys to the cabinet are on the table." --layers 4,8,12');
  cmd.action(action(async (ui, texts: string[], opts: EmbedCliOptions) => {
    const inputs = readInputs(texts, opts.file);
    const model = await loadModel(opts.model, { revision: opts.revision, offline: isOffline(opts), seed: opts.seed, ui });
    if (model.source.randomInit) ui.info(`model ${model.source.id}: random-init control`);
    const cfg = model.config;
    const layers = parseLayerSpec(opts.layers, cfg.numHiddenLayers);
    const attnLayers = opts.attentions ? layers.filter((l) => l >= 1) : [];
    if (opts.attentions && attnLayers.length === 0) ui.warn('--attentions: layer 0 (embeddings) has no attention; none printed');
    const engine = await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
    let windowed = 0;
    try {
      for (let c = 0; c < inputs.length; c += CHUNK) {
        const chunk = inputs.slice(c, c + CHUNK).map((inp) => ({ ...inp, ...encodeRaw(model.tokenizer, inp.text) }));
        const results: SentenceForward[] = [];
        await forwardSentences(engine, chunk.map((x) => x.enc), {
          hiddenStates: layers, attentions: attnLayers, batchSize: opts.batchSize, padId: model.tokenizer.padId, maxPositions: cfg.maxPositionEmbeddings,
          onSentence: (r) => void (results[r.index] = r),
        });
        chunk.forEach((x, i) => {
          const r = results[i]!;
          const W = x.words.length, P = r.numPieces, H = cfg.hiddenSize;
          const obj: Record<string, unknown> = { text: x.text, tokens: x.enc.tokens, words: x.words, layers: {} };
          for (const l of layers) {
            const states = r.states.get(l)!;
            if (opts.pieces) (obj.layers as Record<string, unknown>)[layerName(l)] = rows(states, P, H);
            else {
              const out = new Float32Array(W * H);
              poolWords(states, H, x.enc.wordSpans, 'mean', out);
              (obj.layers as Record<string, unknown>)[layerName(l)] = rows(out, W, H);
            }
          }
          if (r.windows > 1) {
            obj.windows = r.windows;
            windowed++;
            ui.warn(`${x.where}: ${P} pieces > ${cfg.maxPositionEmbeddings} positions: vectors from ${r.windows} overlapping windows${attnLayers.length ? ', attentions omitted (null)' : ''}`);
          }
          if (attnLayers.length) {
            if (!r.attentions) obj.attentions = null;
            else {
              const a: Record<string, unknown> = {};
              for (const l of attnLayers) {
                const raw = r.attentions.get(l)!;
                a[attnName(l)] = opts.pieces ? cube(raw, cfg.numAttentionHeads, P) : cube(wordAttention(raw, cfg.numAttentionHeads, P, x.enc.wordSpans), cfg.numAttentionHeads, W + 2);
              }
              obj.attentions = a;
            }
          }
          process.stdout.write(JSON.stringify(obj) + '\n');
        });
      }
    } finally {
      await engine.dispose();
    }
    ui.debug(`embedded ${inputs.length} sentence(s) with ${engine.kind}/${engine.backend}${windowed ? `, ${windowed} windowed` : ''}`);
  }));
}
