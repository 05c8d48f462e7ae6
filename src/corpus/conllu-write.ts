import type { Corpus, Sentence } from './types.js';

/**
 * Write sentences as CoNLL-U (https://universaldependencies.org/format.html). Columns the source
 * lacks are `_`. PTB trees give XPOS and converted heads/relations; entities go to MISC as
 * `NE=B-TYPE`/`I-TYPE` (IOB2), senses as `Lemma`, `WNSN` and `LexSN` in MISC (LEMMA too);
 * SRL frames as `SRL=` in MISC of the predicate (`sense:ARG0@3,ARG1@5`, 1-based word IDs);
 * a sentence label as `# label = …`. Tabs/newlines inside words are replaced by spaces.
 */
export function sentenceToConllu(s: Sentence): string {
  const lines: string[] = [];
  lines.push(`# sent_id = ${s.id}`);
  lines.push(`# text = ${(s.text ?? s.words.join(' ')).replace(/\s+/g, ' ')}`);
  if (s.label !== undefined) lines.push(`# label = ${s.label}`);
  const ne: string[] = new Array(s.words.length).fill('');
  for (const e of s.entities ?? []) for (let i = e.start; i < e.end; i++) ne[i] = `${i === e.start ? 'B' : 'I'}-${e.label}`;
  const srl: string[] = new Array(s.words.length).fill('');
  for (const f of s.srl ?? []) srl[f.predicate] = `${f.sense}:${f.args.map((a) => `${a.label}@${a.start + 1}`).join(',')}`;
  s.words.forEach((w, i) => {
    const sense = s.senses?.[i];
    const misc: string[] = [];
    if (ne[i]) misc.push(`NE=${ne[i]}`);
    if (sense) {
      if (sense.wnsn) misc.push(`WNSN=${sense.wnsn}`);
      if (sense.lexsn) misc.push(`LexSN=${sense.lexsn}`);
    }
    if (srl[i]) misc.push(`SRL=${srl[i]}`);
    const cell = (v: string | number | undefined) => (v === undefined || v === '' ? '_' : String(v).replace(/[\t\n\r]/g, ' '));
    lines.push(
      [
        i + 1,
        cell(w),
        cell(sense?.lemma),
        cell(s.upos?.[i]),
        cell(s.xpos?.[i]),
        '_',
        cell(s.heads?.[i]),
        cell(s.deprels?.[i]),
        '_',
        misc.length ? misc.join('|') : '_',
      ].join('\t'),
    );
  });
  return lines.join('\n') + '\n\n';
}

export function corpusToConllu(c: Corpus): string {
  const parts = [`# source = ${c.id} (sha256 ${c.sha256})\n`];
  for (const s of c.sentences) parts.push(sentenceToConllu(s));
  return parts.join('');
}
