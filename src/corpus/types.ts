/** One sentence model for every corpus format (issue 3). Word indices are 0-based. */

export interface SourceLocation {
  file: string;
  /** 1-based line where the sentence starts. */
  line: number;
}

/** [start, end) over word indices, with a label (entity type, SRL role). */
export interface LabelledSpan {
  start: number;
  end: number;
  label: string;
}

export interface SrlFrame {
  /** Word index of the predicate. */
  predicate: number;
  /** PropBank roleset, e.g. `go.02`. */
  sense: string;
  args: LabelledSpan[];
}

export interface WordSense {
  lemma: string;
  pos?: string;
  /** WordNet sense number(s) as written (`wnsn`), e.g. "1" or "1;2". */
  wnsn?: string;
  /** Sense-key tail (`lexsn`), e.g. "1:10:00::". */
  lexsn?: string;
}

/** Constituency tree; leaves carry the index of their word. */
export interface Tree {
  label: string;
  children: Tree[];
  word?: number;
}

export interface Sentence {
  id: string;
  source: SourceLocation;
  words: string[];
  /** Original text when the source has it (`# text`, plain text). */
  text?: string;
  upos?: string[];
  xpos?: string[];
  /** 1-based head per word, 0 = root (CoNLL convention). */
  heads?: number[];
  deprels?: string[];
  tree?: Tree;
  entities?: LabelledSpan[];
  srl?: SrlFrame[];
  /** Per word; null where the word carries no sense tag. */
  senses?: (WordSense | null)[];
  /** Sentence label (classification corpora). */
  label?: string;
  comments?: string[];
}

export interface Corpus {
  /** e.g. `ewt:test`, `ptb:dev`, or a file path. */
  id: string;
  format: string;
  split?: string;
  /** sha256 over the bytes of the files read, in order. */
  sha256: string;
  files: string[];
  sentences: Sentence[];
  /** Items skipped on purpose (multiword tokens, empty nodes, traces), counted, never silent. */
  skipped: Record<string, number>;
  warnings: string[];
}
