import { InputError } from '../util/errors.js';
import type { Sentence, WordSense } from './types.js';
import { emptyResult, splitLines, type ReadResult, type SourceText } from './source.js';

/**
 * SemCor tag files (Miller et al. 1993; format of the SemCor 3.0 distribution by Mihalcea):
 * `<s snum=N>` … `</s>` with one `<wf …>word</wf>` or `<punc>x</punc>` per line. A `<wf>` with
 * `lemma=` and `wnsn=` carries a WordNet 3.0 sense (`wnsn` sense number, `lexsn` sense-key
 * tail); others get a null sense. Multiword expressions are written with `_`
 * (`took_place`); they stay one word, with spaces for the underscores, so the sense covers
 * every word piece of the expression.
 */
export function readSemcor(src: SourceText): ReadResult {
  const out = emptyResult();
  const lines = splitLines(src.text);
  let ctxName = src.name.split('/').pop() ?? src.name;
  let cur: { s: Sentence; senses: (WordSense | null)[]; pos: string[] } | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    if (line.startsWith('<wf') || line.startsWith('<punc')) {
      if (!cur) throw new InputError('word outside a sentence', { file: src.name, line: i + 1, expected: '<wf …> inside <s snum=N> … </s>', found: line.slice(0, 60), fix: 'add the missing <s> tag' });
      const m = /^<(wf|punc)([^>]*)>(.*)<\/\1>$/.exec(line);
      if (!m) throw new InputError('malformed SemCor tag', { file: src.name, line: i + 1, expected: '<wf attr=value …>word</wf> or <punc>x</punc> on one line', found: line.slice(0, 80), fix: 'close the tag on the same line' });
      const attrs = parseAttrs(m[2]!);
      const word = decodeEntities(m[3]!).replace(/_/g, ' ');
      if (!word) throw new InputError('empty word', { file: src.name, line: i + 1, expected: 'a word between the tags', found: line.slice(0, 80), fix: 'remove the empty tag' });
      cur.s.words.push(word);
      cur.pos.push(m[1] === 'punc' ? 'PUNC' : (attrs.pos ?? '_'));
      if (m[1] === 'wf' && attrs.lemma && attrs.wnsn) {
        const ws: WordSense = { lemma: attrs.lemma, wnsn: attrs.wnsn };
        if (attrs.pos) ws.pos = attrs.pos;
        if (attrs.lexsn) ws.lexsn = attrs.lexsn;
        cur.senses.push(ws);
      } else cur.senses.push(null);
      continue;
    }
    if (line.startsWith('<s ') || line === '<s>') {
      if (cur) throw new InputError('unclosed sentence', { file: src.name, line: i + 1, expected: '</s> before the next <s>', found: line, fix: 'add the missing </s>' });
      const snum = parseAttrs(line.slice(2, -1)).snum ?? String(out.sentences.length + 1);
      cur = { s: { id: `${ctxName}#${snum}`, source: { file: src.name, line: i + 1 }, words: [] }, senses: [], pos: [] };
      continue;
    }
    if (line === '</s>') {
      if (!cur) throw new InputError('</s> without <s>', { file: src.name, line: i + 1, expected: '<s snum=N> before </s>', found: '</s>', fix: 'remove the stray </s>' });
      if (cur.s.words.length) {
        cur.s.senses = cur.senses;
        cur.s.xpos = cur.pos;
        out.sentences.push(cur.s);
      }
      cur = null;
      continue;
    }
    if (line.startsWith('<context')) {
      const f = parseAttrs(line.slice(8, -1)).filename;
      if (f) ctxName = f;
    }
    // <contextfile>, <p>, </p>, </context> carry no words
  }
  if (cur) throw new InputError('unclosed sentence at end of file', { file: src.name, line: cur.s.source.line, expected: '</s>', found: 'end of file', fix: 'add the missing </s>' });
  if (!out.sentences.length) throw new InputError('no sentences', { file: src.name, expected: 'SemCor <s> … </s> blocks', found: 'none', fix: 'check the file and its --format' });
  return out;
}

function parseAttrs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([\w-]+)=("[^"]*"|[^\s>]+)/g)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? v.slice(1, -1) : v;
  }
  return out;
}

function decodeEntities(s: string): string {
  return s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"');
}
