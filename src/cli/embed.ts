import type { Command } from 'commander';
import { readTextFile } from '../corpus/source.js';
import { createEngine } from '../model/engine.js';
import { loadModel } from '../model/load.js';
import type { Encoding, Tokenizer } from '../model/types.js';
import { poolWords, wordAttention } from '../extract/align.js';
import { forwardSentences, type SentenceForward } from '../extract/forward.js';
import { InputError } from '../util/errors.js';
import { attnName, layerName, parseLayerSpec } from '../util/names.js';
import { action, addModelOptions, addOutputOptions, isOffline, positiveInt, withExample, type ModelOptions, type OutputOptions } from './common.js';

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
  maxPieces: number;
}

/** Chunk of inputs run together (bounded memory for long --file inputs). */
const CHUNK = 64;

export function readInputs(texts: string[], file: string | undefined): { text: string; where: string }[] {
  const out = texts.map((text, i) => ({ text, where: `argument ${i + 1}` }));
  if (file !== undefined) {
    // The same strict reading as every corpus (invalid UTF-8 and binary refused, exit 2).
    readTextFile(file).split(/\r?\n/).forEach((line, i) => {
      if (line.trim()) out.push({ text: line, where: `${file}:${i + 1}` });
    });
  }
  if (out.length === 0) throw new InputError('no text to embed', { expected: 'TEXT arguments or --file F (one sentence per line)', found: file ? `no non-empty line in ${file}` : 'neither', fix: 'bert-probe embed "The cat sat." or --file sentences.txt' });
  return out;
}

/** Default bound on word pieces per input (--max-pieces): 128 windows of bert-base's 512 positions. */
export const DEFAULT_MAX_PIECES = 65536;

/**
 * stdout writer that never builds one huge string (a 10 MB input line used to crash with
 * "Invalid string length"): pieces are buffered up to 1 MiB and written, waiting for the pipe
 * to drain when it is full.
 */
class StreamOut {
  private buf: string[] = [];
  private size = 0;
  async put(s: string): Promise<void> {
    this.buf.push(s);
    this.size += s.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (!this.size) return;
    const chunk = this.buf.join('');
    this.buf = [];
    this.size = 0;
    if (!process.stdout.write(chunk)) await new Promise<void>((r) => process.stdout.once('drain', () => r()));
  }
}

/** A row list as JSON, written row by row. */
async function putRows(out: StreamOut, a: Float32Array, n: number, h: number): Promise<void> {
  await out.put('[');
  for (let i = 0; i < n; i++) await out.put((i ? ',' : '') + JSON.stringify(Array.from(a.subarray(i * h, (i + 1) * h), round)));
  await out.put(']');
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
    .option('--attentions', 'add attention maps of the same layers (1..L) at the same granularity')
    .option('--max-pieces <n>', `refuse an input longer than this many word pieces (memory grows with it; split long text into sentences)`, positiveInt('--max-pieces'), DEFAULT_MAX_PIECES);
  addModelOptions(cmd);
  addOutputOptions(cmd);
  withExample(cmd, 'bert-probe embed "The keys to the cabinet are on the table." --layers 4,8,12');
  cmd.action(action(async (ui, texts: string[], opts: EmbedCliOptions) => {
    const inputs = readInputs(texts, opts.file);
    const model = await loadModel(opts.model, { revision: opts.revision, offline: isOffline(opts), seed: opts.modelSeed, ui });
    if (model.source.randomInit) ui.info(`model ${model.source.id}: random-init control`);
    const cfg = model.config;
    const layers = parseLayerSpec(opts.layers, cfg.numHiddenLayers);
    const attnLayers = opts.attentions ? layers.filter((l) => l >= 1) : [];
    if (opts.attentions && attnLayers.length === 0) ui.warn('--attentions: layer 0 (embeddings) has no attention; none printed');
    const engine = await createEngine(model, { engine: opts.engine, backend: opts.backend, device: opts.device, precision: opts.precision, ui });
    // Every line names its model and whether it is the random-init control, and why (issue 15).
    const modelFields = { model: model.source.id, random_init: model.source.randomInit, ...(model.source.randomInitReason ? { random_init_reason: model.source.randomInitReason } : {}) };
    const out = new StreamOut();
    let windowed = 0;
    try {
      for (let c = 0; c < inputs.length; c += CHUNK) {
        const chunk = inputs.slice(c, c + CHUNK).map((inp) => ({ ...inp, ...encodeRaw(model.tokenizer, inp.text) }));
        for (const x of chunk) {
          const P = x.enc.ids.length;
          if (P > opts.maxPieces) {
            throw new InputError(`input too long: ${P} word pieces`, { file: x.where, expected: `at most --max-pieces ${opts.maxPieces} pieces per input (the model reads ${cfg.maxPositionEmbeddings} at a time)`, found: `${P} pieces (${x.text.length} characters)`, fix: 'split the text into sentences, one per line, or raise --max-pieces' });
          }
          // Said before the forward pass, not after it.
          if (P > cfg.maxPositionEmbeddings) ui.warn(`${x.where}: ${P} pieces > ${cfg.maxPositionEmbeddings} positions: vectors from overlapping windows${attnLayers.length ? ', attentions omitted (null)' : ''}`);
        }
        const results: SentenceForward[] = [];
        await forwardSentences(engine, chunk.map((x) => x.enc), {
          hiddenStates: layers, attentions: attnLayers, batchSize: opts.batchSize, padId: model.tokenizer.padId, maxPositions: cfg.maxPositionEmbeddings,
          onSentence: (r) => void (results[r.index] = r),
        });
        for (let i = 0; i < chunk.length; i++) {
          const x = chunk[i]!;
          const r = results[i]!;
          results[i] = undefined as unknown as SentenceForward; // let this sentence's states go once written
          const W = x.words.length, P = r.numPieces, H = cfg.hiddenSize;
          await out.put(`{"text":${JSON.stringify(x.text)},"tokens":${JSON.stringify(x.enc.tokens)},"words":${JSON.stringify(x.words)},"model":${JSON.stringify(modelFields.model)},"random_init":${modelFields.random_init}${modelFields.random_init_reason ? `,"random_init_reason":${JSON.stringify(modelFields.random_init_reason)}` : ''},"layers":{`);
          for (let li = 0; li < layers.length; li++) {
            const l = layers[li]!;
            const states = r.states.get(l)!;
            await out.put(`${li ? ',' : ''}${JSON.stringify(layerName(l))}:`);
            if (opts.pieces) await putRows(out, states, P, H);
            else {
              const pooled = new Float32Array(W * H);
              poolWords(states, H, x.enc.wordSpans, 'mean', pooled);
              await putRows(out, pooled, W, H);
            }
          }
          await out.put('}');
          if (r.windows > 1) {
            await out.put(`,"windows":${r.windows}`);
            windowed++;
          }
          if (attnLayers.length) {
            if (!r.attentions) await out.put(',"attentions":null');
            else {
              const a: Record<string, unknown> = {};
              for (const l of attnLayers) {
                const raw = r.attentions.get(l)!;
                a[attnName(l)] = opts.pieces ? cube(raw, cfg.numAttentionHeads, P) : cube(wordAttention(raw, cfg.numAttentionHeads, P, x.enc.wordSpans), cfg.numAttentionHeads, W + 2);
              }
              await out.put(`,"attentions":${JSON.stringify(a)}`);
            }
          }
          await out.put('}\n');
        }
      }
      await out.flush();
    } finally {
      await engine.dispose();
    }
    ui.debug(`embedded ${inputs.length} sentence(s) with ${engine.kind}/${engine.backend}${windowed ? `, ${windowed} windowed` : ''}`);
  }));
}
