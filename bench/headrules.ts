import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { headAgreement, ptbKey, readDp, readHeadsTable, type RefSentence } from '../src/corpus/head-agreement.js';
import { loadCorpus } from '../src/corpus/load.js';
import type { Sentence } from '../src/corpus/types.js';
import { writeJsonAtomic } from '../src/util/atomic.js';

/**
 * Head-rule agreement (issue 15): `collins` heads of the NLTK PTB sample against Yamada &
 * Matsumoto's ptbconv 3.0 — the converter whose output NLTK ships as dependency_treebank
 * (wsj_NNNN.dp) — on non-punctuation words (tags `` '' , . : left out, as ptbconv and Penn2Malt
 * evaluations do) and on all words. Split: wsj_0001-0099 is where the rules were checked while
 * writing them (dev), wsj_0100-0199 is held out.
 *
 * References: BERT_PROBE_HEADS_REF = a folder of wsj_NNNN.dp files (NLTK's
 * corpora/dependency_treebank, or `ptbconv -D < wsj_NNNN.mrg` output) for all 199 files; without
 * it, the heads table committed in test/fixtures/corpus (held-out wsj_0150-0199 only). Reads the
 * trees through BERT_PROBE_DATA_MIRROR (default ../shared/data).
 *
 *   npm run bench headrules
 *   BERT_PROBE_HEADS_REF=~/nltk_data/corpora/dependency_treebank npm run bench headrules
 */
export async function benchHeadrules(): Promise<unknown> {
  const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
  process.env.BERT_PROBE_DATA_MIRROR ??= join(root, '..', 'shared', 'data');
  const refDir = process.env.BERT_PROBE_HEADS_REF;
  const refs = new Map<string, RefSentence>();
  let source: string;
  if (refDir) {
    if (!existsSync(refDir)) throw new Error(`BERT_PROBE_HEADS_REF=${refDir}: no such folder`);
    for (const f of readdirSync(refDir).filter((x) => /^wsj_\d{4}\.dp$/.test(x)).sort())
      for (const [k, v] of readDp(readFileSync(join(refDir, f), 'utf8'), f.slice(0, 8), join(refDir, f))) refs.set(k, v);
    source = `${refDir} (${refs.size} sentences)`;
  } else {
    const table = join(root, 'test', 'fixtures', 'corpus', 'ptbconv-heads-wsj_0150-0199.tsv');
    for (const [k, v] of readHeadsTable(readFileSync(table, 'utf8'), table)) refs.set(k, v);
    source = `${table} (held-out wsj_0150-0199 only; set BERT_PROBE_HEADS_REF for all 199 files)`;
  }
  const sentences: Sentence[] = [];
  for (const split of ['train', 'dev', 'test']) sentences.push(...(await loadCorpus(`ptb:${split}`, { headRules: 'collins' })).sentences);
  const fileNo = (s: Sentence) => Number(/wsj_(\d{4})\.mrg#/.exec(s.id)?.[1] ?? NaN);
  const parts: [string, (n: number) => boolean][] = refDir
    ? [
        ['dev wsj_0001-0099', (n) => n < 100],
        ['held-out wsj_0100-0199', (n) => n >= 100],
      ]
    : [['held-out wsj_0150-0199', (n) => n >= 150]];
  const rows = [];
  process.stdout.write(`headrules  collins vs ptbconv; references: ${source}\n`);
  for (const [name, keep] of parts) {
    // with the committed table only its files are compared; with a full folder a sentence it lacks counts as missing
    const part = sentences.filter((s) => keep(fileNo(s)) && (refDir !== undefined || refs.has(ptbKey(s.id) ?? '')));
    if (!part.length) {
      process.stdout.write(`headrules  ${name.padEnd(23)} no references\n`);
      continue;
    }
    const a = headAgreement(part, refs);
    const row = { part: name, sentences: a.sentences, words: a.words, agreement: a.agree / a.words, wordsAll: a.wordsAll, agreementAll: a.agreeAll / a.wordsAll, missing: a.missing.length, misaligned: a.misaligned };
    rows.push(row);
    process.stdout.write(`headrules  ${name.padEnd(23)} ${String(a.sentences).padStart(5)} sentences  ${(100 * row.agreement).toFixed(2)}% of ${a.words} non-punctuation words  ${(100 * row.agreementAll).toFixed(2)}% of all ${a.wordsAll}${a.missing.length ? `  ${a.missing.length} without reference` : ''}${a.misaligned.length ? `  ${a.misaligned.length} misaligned` : ''}\n`);
  }
  writeJsonAtomic(join(root, '.bench', 'headrules.json'), { node: process.version, when: new Date().toISOString(), references: source, rows });
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await benchHeadrules();
