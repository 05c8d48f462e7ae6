/**
 * Sentences longer than the model's positions, cut into overlapping windows and stitched back.
 *
 * A model with M position embeddings takes C = M - 2 word pieces per window ([CLS] + C pieces +
 * [SEP]). The n content pieces of a long sentence (everything between its [CLS] and [SEP]) are
 * covered by windows of C pieces starting at 0, S, 2S, ... with stride S = floor(C / 2) (half
 * the window overlaps the next); the last window is moved back so it ends exactly at n. Every
 * piece takes its hidden states from the window in which it has the most context on its
 * shorter side, max over windows of min(pieces before it, pieces after it) inside the window
 * (ties go to the earlier window) — the "maximum context" rule of BERT's SQuAD code
 * (Devlin et al. 2019, run_squad.py `_check_is_max_context`). [CLS] comes from the first window,
 * [SEP] from the last. Attention is not stitched: for windowed sentences it is skipped, and
 * the store counts them.
 */
export interface Window {
  /** [start, end) over content pieces (0 = the first piece after [CLS]). */
  start: number;
  end: number;
}

export function defaultStride(windowContent: number): number {
  return Math.max(1, Math.floor(windowContent / 2));
}

export function planWindows(numContent: number, windowContent: number, stride = defaultStride(windowContent)): Window[] {
  if (windowContent < 1) throw new Error(`window must hold at least one piece (got ${windowContent})`);
  if (numContent <= windowContent) return [{ start: 0, end: numContent }];
  const out: Window[] = [];
  for (let start = 0; ; start += stride) {
    if (start + windowContent >= numContent) {
      out.push({ start: numContent - windowContent, end: numContent });
      break;
    }
    out.push({ start, end: start + windowContent });
  }
  return out;
}

/** For each content piece, the index of the window its vectors come from (maximum context). */
export function ownerWindows(numContent: number, windows: readonly Window[]): Int32Array {
  const owner = new Int32Array(numContent).fill(-1);
  const best = new Int32Array(numContent).fill(-1);
  windows.forEach((w, wi) => {
    for (let i = w.start; i < w.end; i++) {
      const score = Math.min(i - w.start, w.end - 1 - i);
      if (score > best[i]!) {
        best[i] = score;
        owner[i] = wi;
      }
    }
  });
  return owner;
}
