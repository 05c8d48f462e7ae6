/**
 * Edge-probing targets (Tenney et al. 2019; REFERENCES.md §3.4, jiant probing/data/*):
 * - pos:  one target per word, span1 = [i, i+1), label = its UPOS (or XPOS with --tagset xpos);
 * - ner:  one target per entity span (from BIO), label = the entity type;
 * - srl:  per predicate frame, span1 = the predicate word, span2 = the argument span, label =
 *         the role (jiant extract_ontonotes_all.py:99-114); Universal PropBank arguments are
 *         head words, so argument spans are one word here;
 * - deps: span1 = the dependent word [i, i+1), span2 = its head word, ROOT pointing to itself,
 *         label = the relation (jiant probing/data/ud_to_json.py:44-69).
 * Spans are word spans, end exclusive; the probe covers every word piece of their words
 * (jiant/utils/retokenize.py:268-275). Targets with the same spans are merged into one target
 * with several labels (jiant's k-hot MultiLabelField).
 */
import type { Sentence } from '../corpus/types.js';

export type EdgeTask = 'pos' | 'ner' | 'srl' | 'deps';
export const EDGE_TASKS: readonly EdgeTask[] = ['pos', 'ner', 'srl', 'deps'];
export type Span = [number, number];

export interface EdgeTarget {
  span1: Span;
  span2?: Span;
  labels: string[];
}

/** Two-span tasks feed span1 and span2 to the classifier (concatenated, 512 in). */
export const isTwoSpan = (task: EdgeTask): boolean => task === 'srl' || task === 'deps';

/** Default corpus of each task (issue 10): pos → ewt (UPOS), ner → uner-ewt, srl → up-ewt, deps → ewt. */
export const DEFAULT_DATA: Record<EdgeTask, string> = { pos: 'ewt', ner: 'uner-ewt', srl: 'up-ewt', deps: 'ewt' };

/**
 * SRL scores keep only core and ARGM roles, as the authors' analysis does (`_clean_micro_`,
 * jiant probing/analysis.py:138-147): ^ARG[0-5A]$ or ^ARGM(-.+)?$ (R-*, C-* dropped).
 */
export const SRL_CLEAN_LABEL = /^ARG[0-5A]$|^ARGM(-.+)?$/;

export function scoredLabel(task: EdgeTask): (label: string) => boolean {
  return task === 'srl' ? (l) => SRL_CLEAN_LABEL.test(l) : () => true;
}

/** Why a sentence has no targets for the task (null when it has some). */
export function targetProblem(task: EdgeTask, s: Sentence, tagset: 'upos' | 'xpos' = 'upos'): string | null {
  switch (task) {
    case 'pos':
      return s[tagset] ? null : `no ${tagset.toUpperCase()} tags`;
    case 'ner':
      return s.entities ? null : 'no entity annotation';
    case 'srl':
      return s.srl ? null : 'no SRL frames';
    case 'deps':
      return s.heads && s.deprels ? null : 'no dependency heads and relations';
  }
}

export function targetsOf(task: EdgeTask, s: Sentence, tagset: 'upos' | 'xpos' = 'upos'): EdgeTarget[] {
  const raw: { span1: Span; span2?: Span; label: string }[] = [];
  switch (task) {
    case 'pos':
      (s[tagset] ?? []).forEach((t, i) => raw.push({ span1: [i, i + 1], label: t }));
      break;
    case 'ner':
      for (const e of s.entities ?? []) raw.push({ span1: [e.start, e.end], label: e.label });
      break;
    case 'srl':
      for (const f of s.srl ?? []) for (const a of f.args) raw.push({ span1: [f.predicate, f.predicate + 1], span2: [a.start, a.end], label: a.label });
      break;
    case 'deps':
      (s.heads ?? []).forEach((h, i) => {
        const head = h === 0 ? i : h - 1;
        raw.push({ span1: [i, i + 1], span2: [head, head + 1], label: s.deprels![i]! });
      });
      break;
  }
  const merged = new Map<string, EdgeTarget>();
  for (const r of raw) {
    const key = `${r.span1}|${r.span2 ?? ''}`;
    const t = merged.get(key);
    if (t) {
      if (!t.labels.includes(r.label)) t.labels.push(r.label);
    } else merged.set(key, { span1: r.span1, ...(r.span2 ? { span2: r.span2 } : {}), labels: [r.label] });
  }
  return [...merged.values()];
}

/** The sorted label set of the training targets (labels seen only elsewhere are never predicted). */
export function labelInventory(targets: Iterable<readonly EdgeTarget[]>): string[] {
  const set = new Set<string>();
  for (const ts of targets) for (const t of ts) for (const l of t.labels) set.add(l);
  return [...set].sort();
}
