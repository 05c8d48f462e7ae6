import { InputError } from '../util/errors.js';

/**
 * Validate 1-based heads (0 = root): every head in range and no cycles, i.e. every word
 * reaches the root. Returns the index (0-based) of a word on a cycle, or -1.
 */
export function findCycle(heads: readonly number[]): number {
  const n = heads.length;
  const state = new Uint8Array(n); // 0 unvisited, 1 on current path, 2 reaches root
  for (let start = 0; start < n; start++) {
    let i = start;
    const path: number[] = [];
    while (i >= 0 && state[i] === 0) {
      state[i] = 1;
      path.push(i);
      i = heads[i]! - 1;
    }
    if (i >= 0 && state[i] === 1) return i;
    for (const p of path) state[p] = 2;
  }
  return -1;
}

/** Throw the reader's cycle error, naming the word's line. */
export function assertNoCycle(heads: readonly number[], file: string, lineOf: (word: number) => number, words: readonly string[]): void {
  const w = findCycle(heads);
  if (w < 0) return;
  const cyc: number[] = [w];
  for (let i = heads[w]! - 1; i !== w && cyc.length <= heads.length; i = heads[i]! - 1) cyc.push(i);
  throw new InputError('dependency cycle', {
    file,
    line: lineOf(w),
    expected: 'heads that form a tree (every word reaches HEAD 0)',
    found: `cycle ${cyc.map((i) => `${i + 1}:${words[i]}`).join(' → ')} → ${w + 1}`,
    fix: 'correct the HEAD column of one of these words',
  });
}
