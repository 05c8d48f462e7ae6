/**
 * Gold targets of the structural probe (Hewitt & Manning 2019, "A Structural Probe for Finding
 * Syntax in Word Representations", §2): the distance between two words is the number of edges
 * on the path between them in the undirected dependency tree, and a word's depth is its
 * distance to the root. Word indices are 0-based; `heads` are CoNLL 1-based with 0 = root.
 */

/** Undirected gold edges [dependent, head] as 0-based word indices; the root has none. */
export type Edge = [number, number];

/**
 * Why `heads` is not a single-rooted tree over `n` words, or null when it is. Callers turn the
 * message into an InputError naming the sentence's file and line.
 */
export function treeProblem(heads: readonly number[]): string | null {
  const n = heads.length;
  if (n === 0) return 'sentence has no words';
  let roots = 0;
  for (let i = 0; i < n; i++) {
    const h = heads[i]!;
    if (!Number.isInteger(h) || h < 0 || h > n) return `word ${i + 1} has head ${h}, outside 0..${n}`;
    if (h === i + 1) return `word ${i + 1} is its own head`;
    if (h === 0) roots++;
  }
  if (roots !== 1) return `${roots} words have head 0 (a tree has exactly one root)`;
  // Every word must reach the root by following heads (no cycles).
  const state = new Uint8Array(n); // 0 unknown, 1 on current path, 2 reaches root
  for (let i = 0; i < n; i++) {
    const path: number[] = [];
    let j = i;
    while (j >= 0 && state[j] === 0) {
      state[j] = 1;
      path.push(j);
      j = heads[j]! - 1;
    }
    if (j >= 0 && state[j] === 1) return `heads form a cycle through word ${j + 1}`;
    for (const p of path) state[p] = 2;
  }
  return null;
}

/** Gold undirected edges [dep, head] (0-based), one per non-root word, in word order. */
export function goldEdges(heads: readonly number[]): Edge[] {
  const out: Edge[] = [];
  heads.forEach((h, i) => {
    if (h > 0) out.push([i, h - 1]);
  });
  return out;
}

function adjacency(heads: readonly number[]): number[][] {
  const adj: number[][] = heads.map(() => []);
  heads.forEach((h, i) => {
    if (h > 0) {
      adj[i]!.push(h - 1);
      adj[h - 1]!.push(i);
    }
  });
  return adj;
}

/**
 * Path lengths between every pair of words in the undirected tree, row-major n×n
 * (BFS from every word; n is a sentence length, so O(n²) is nothing).
 */
export function treeDistances(heads: readonly number[]): Float32Array {
  const n = heads.length;
  const adj = adjacency(heads);
  const out = new Float32Array(n * n).fill(-1);
  const queue = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    const row = s * n;
    out[row + s] = 0;
    let head = 0;
    let tail = 0;
    queue[tail++] = s;
    while (head < tail) {
      const u = queue[head++]!;
      for (const v of adj[u]!) {
        if (out[row + v]! < 0) {
          out[row + v] = out[row + u]! + 1;
          queue[tail++] = v;
        }
      }
    }
  }
  return out;
}

/** Depth of every word: its distance to the root (the root has depth 0). */
export function treeDepths(heads: readonly number[]): Float32Array {
  const n = heads.length;
  const out = new Float32Array(n).fill(-1);
  const depthOf = (i: number): number => {
    const path: number[] = [];
    let j = i;
    while (out[j]! < 0 && heads[j]! > 0) {
      path.push(j);
      j = heads[j]! - 1;
    }
    let d = out[j]! < 0 ? 0 : out[j]!;
    out[j] = d;
    for (let k = path.length - 1; k >= 0; k--) out[path[k]!] = ++d;
    return out[i]!;
  };
  for (let i = 0; i < n; i++) depthOf(i);
  return out;
}

/** The linear baseline's distances (|i − j|, a chain through the words in order). */
export function chainDistances(n: number): Float32Array {
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = Math.abs(i - j);
  return out;
}

/** The linear baseline's depths: the word index (the first word is the root). */
export function chainDepths(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}
