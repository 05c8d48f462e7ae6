import { InputError } from '../../util/errors.js';
import type { Tokenizer } from '../../model/types.js';

/**
 * How the word pieces of a structural-probes BERT hdf5 file line up with the corpus's words,
 * exactly as their code does it:
 *  - scripts/convert_raw_to_bert.py: `wordpiece_tokenizer.tokenize('[CLS] ' + line + ' [SEP]')`,
 *    i.e. WordPiece only (no basic tokenization: punctuation inside a word stays in that word,
 *    no lower-casing), one dataset row per piece;
 *  - structural-probes/data.py `SubwordDataset.match_tokenized_to_untokenized`: from piece 1,
 *    each word takes its piece and every following piece that starts with `##`.
 * WordPiece itself is pytorch_pretrained_bert's `WordpieceTokenizer.tokenize` (tokenization.py):
 * split on whitespace; a token over 100 characters is [UNK]; greedy longest match first, later
 * pieces prefixed `##`; a token with no match is [UNK].
 */
export function structuralProbesAlignment(words: readonly string[], tokenizer: Pick<Tokenizer, 'tokenToId'>): { pieces: number; spans: [number, number][] } {
  const tokens = wordpiece(`[CLS] ${words.join(' ')} [SEP]`, (t) => tokenizer.tokenToId(t) !== undefined);
  const mapping: number[][] = words.map(() => []);
  let u = 0;
  let t = 1;
  while (u < words.length && t < tokens.length) {
    while (t + 1 < tokens.length && tokens[t + 1]!.startsWith('##')) mapping[u]!.push(t++);
    mapping[u]!.push(t);
    u++;
    t++;
  }
  const spans = mapping.map((m, i): [number, number] => {
    if (m.length === 0) {
      throw new InputError(`word ${i} ('${words[i]}') gets no word piece in structural-probes' alignment`, { expected: 'each word to start a new piece', found: `${tokens.length} pieces for ${words.length} words`, fix: 'the words contain spaces or pieces starting with ##; pass the alignment of the tool that wrote the file' });
    }
    return [m[0]!, m[m.length - 1]! + 1];
  });
  return { pieces: tokens.length, spans };
}

/** pytorch_pretrained_bert tokenization.py `WordpieceTokenizer.tokenize` (unk '[UNK]', 100 chars). */
export function wordpiece(text: string, inVocab: (piece: string) => boolean): string[] {
  const out: string[] = [];
  for (const token of text.trim().split(/\s+/)) {
    if (!token) continue;
    const chars = Array.from(token);
    if (chars.length > 100) {
      out.push('[UNK]');
      continue;
    }
    const sub: string[] = [];
    let start = 0;
    let bad = false;
    while (start < chars.length) {
      let end = chars.length;
      let cur: string | null = null;
      while (start < end) {
        let s = chars.slice(start, end).join('');
        if (start > 0) s = `##${s}`;
        if (inVocab(s)) {
          cur = s;
          break;
        }
        end--;
      }
      if (cur === null) {
        bad = true;
        break;
      }
      sub.push(cur);
      start = end;
    }
    if (bad) out.push('[UNK]');
    else out.push(...sub);
  }
  return out;
}
