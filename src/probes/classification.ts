/**
 * Scores of a single-label classifier: accuracy, per-class precision / recall / F1, the
 * confusion matrix, and the two reference baselines (majority class of train; chance = 1/C).
 * Gold −1 marks an item whose class the classifier cannot output (unseen in train): it counts as
 * an error and towards no class's precision.
 */

export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Gold items of this class. */
  support: number;
  predicted: number;
}

export interface ClassificationReport {
  accuracy: number;
  total: number;
  correct: number;
  perClass: ClassScores[];
  /** confusion[gold][predicted], in label order. */
  confusion: number[][];
  macroF1: number;
  /** Items whose gold class is not among the labels (scored wrong). */
  unseen: number;
}

export function classificationReport(gold: ArrayLike<number>, predicted: ArrayLike<number>, labels: readonly string[]): ClassificationReport {
  const C = labels.length;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let correct = 0;
  let unseen = 0;
  const predCount = new Array<number>(C).fill(0);
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i]!;
    const p = predicted[i]!;
    predCount[p]!++;
    if (g < 0) {
      unseen++;
      continue;
    }
    confusion[g]![p]!++;
    if (g === p) correct++;
  }
  const perClass = labels.map((label, c) => {
    const tp = confusion[c]![c]!;
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const precision = predCount[c]! ? tp / predCount[c]! : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support, predicted: predCount[c]! };
  });
  const present = perClass.filter((c) => c.support > 0);
  return {
    accuracy: gold.length ? correct / gold.length : Number.NaN,
    total: gold.length,
    correct,
    perClass,
    confusion,
    macroF1: present.length ? present.reduce((a, c) => a + c.f1, 0) / present.length : Number.NaN,
    unseen,
  };
}

/** Accuracy of always answering train's most frequent class, on these gold labels. */
export function majorityBaseline(trainLabels: ArrayLike<number>, gold: ArrayLike<number>, classes: number): { label: number; accuracy: number } {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < trainLabels.length; i++) counts[trainLabels[i]!]!++;
  const label = counts.indexOf(Math.max(...counts));
  let hit = 0;
  for (let i = 0; i < gold.length; i++) if (gold[i] === label) hit++;
  return { label, accuracy: gold.length ? hit / gold.length : Number.NaN };
}

/** argmax of each row of [rows, classes]. */
export function argmaxRows(logits: ArrayLike<number>, classes: number): Int32Array {
  const rows = logits.length / classes;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = logits[r * classes + c]!;
      if (v > best) {
        best = v;
        out[r] = c;
      }
    }
  }
  return out;
}
