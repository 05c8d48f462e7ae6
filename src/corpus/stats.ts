import type { Corpus } from './types.js';

/** Counts `data info` prints: sentences, words, and per annotation layer what is there. */
export interface CorpusStats {
  sentences: number;
  words: number;
  withHeads: number;
  /** Sentences whose heads form a tree with exactly one root. */
  singleRooted: number;
  entities: number;
  frames: number;
  senses: number;
  labels: Record<string, number>;
  skipped: Record<string, number>;
}

export function corpusStats(c: Corpus): CorpusStats {
  const st: CorpusStats = { sentences: c.sentences.length, words: 0, withHeads: 0, singleRooted: 0, entities: 0, frames: 0, senses: 0, labels: {}, skipped: { ...c.skipped } };
  for (const s of c.sentences) {
    st.words += s.words.length;
    if (s.heads) {
      st.withHeads++;
      let roots = 0;
      for (const h of s.heads) if (h === 0) roots++;
      if (roots === 1) st.singleRooted++;
    }
    st.entities += s.entities?.length ?? 0;
    st.frames += s.srl?.length ?? 0;
    if (s.senses) for (const x of s.senses) if (x) st.senses++;
    if (s.label !== undefined) st.labels[s.label] = (st.labels[s.label] ?? 0) + 1;
  }
  return st;
}
