import { InputError } from '../util/errors.js';
import type { Sentence } from './types.js';
import { countSkip, emptyResult, splitLines, type ReadResult, type SourceText } from './source.js';

/**
 * Plain text, one sentence per line, words split on whitespace (already-tokenized text is the
 * expected input; punctuation attached to words stays attached). Blank lines are skipped and
 * counted. `label` (e.g. from the member name of a labelled-lines corpus) is set on every sentence.
 */
export function readText(src: SourceText, label?: string): ReadResult {
  const out = emptyResult();
  const lines = splitLines(src.text);
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (!text) {
      countSkip(out, 'blank lines');
      continue;
    }
    const s: Sentence = { id: `${src.name}:${i + 1}`, source: { file: src.name, line: i + 1 }, words: text.split(/\s+/), text };
    if (label !== undefined) s.label = label;
    out.sentences.push(s);
  }
  if (!out.sentences.length) throw new InputError('no sentences', { file: src.name, expected: 'one sentence per line', found: 'only blank lines', fix: 'check the file' });
  return out;
}
