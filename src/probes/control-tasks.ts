/**
 * Control tasks (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control Tasks";
 * REFERENCES.md §6.1, control-tasks/task.py):
 * - POS control (CorruptedPartOfSpeechLabelTask, task.py:628-682): the word types of train,
 *   dev and test, in a seeded shuffled order, each get one label drawn i.i.d. from the empirical
 *   training tag distribution; every token of a type carries its type's label, whatever the
 *   context (corrupted_token_percent = 1.0: every type).
 * - deps control: Hewitt & Liang's edge control (task.py:244-308) reattaches each word to
 *   itself, the first or the last word by type — a structural task, for the structural probe.
 *   Edge probing labels (dependent, head) pairs, so its control here keeps the gold pairs and
 *   gives each dependent's word type one relation drawn from the training relation
 *   distribution, the POS control's construction applied to the deps label space (our choice,
 *   recorded in the manifest and docs/layers.md).
 * selectivity = task score − control score at the same layer (summarize_elmo1_elmo2.py:44-47).
 */
import { mulberry32, shuffled } from '../util/random.js';

/** Empirical distribution of labels, as [label, probability] sorted by label. */
export function labelDistribution(labels: Iterable<string>): [string, number][] {
  const counts = new Map<string, number>();
  let n = 0;
  for (const l of labels) {
    counts.set(l, (counts.get(l) ?? 0) + 1);
    n++;
  }
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([l, c]) => [l, c / n]);
}

/** One draw from a categorical distribution with a uniform number u in [0, 1). */
function draw(dist: readonly [string, number][], u: number): string {
  let acc = 0;
  for (const [l, p] of dist) {
    acc += p;
    if (u < acc) return l;
  }
  return dist[dist.length - 1]![0];
}

/**
 * The control label of every word type: types in a seeded shuffled order (first-seen order
 * before the shuffle, so the result depends only on the corpus and the seed), each drawing
 * its label from `dist`.
 */
export function controlLabels(wordTypes: Iterable<string>, dist: readonly [string, number][], seed: number): Map<string, string> {
  if (dist.length === 0) throw new Error('control task: empty label distribution');
  const types = [...new Set(wordTypes)];
  const rand = mulberry32(seed);
  const order = shuffled(types, rand);
  const out = new Map<string, string>();
  for (const t of order) out.set(t, draw(dist, rand()));
  return out;
}
