/**
 * Clark et al. 2019's attention-only parser probe ("Attn-only", §5; `Syntax_Analysis.ipynb`
 * cells 12-15, REFERENCES.md §1.5), written once as a probe graph:
 *
 *   s(i, j)    = Σ_k w_k · A_k[i, j]                          for a word candidate j
 *   s(i, ROOT) = Σ_k w_k · (r_start · A_k[i, CLS] + r_end · A_k[i, SEP])
 *
 * over the M = L·H word-level maps and (by default, `include_transpose=True`) their transposes
 * (2·L·H = 288 for BERT-base); a softmax over {ROOT} ∪ words for each word; cross-entropy with the
 * gold head. We average the loss over the batch's words (the authors sum it; the difference is a
 * learning-rate scale) and score UAS as the argmax head, without words whose gold relation is
 * `punct` (line 584), no tree decoding.
 */
import type { Feed } from './graph/types.js';
import type { ProbeDefinition } from './probe-model.js';

/** Number of maps: L·H, twice with transposes. */
export const parserMapCount = (layers: number, heads: number, transpose: boolean): number => layers * heads * (transpose ? 2 : 1);

export function attnParser(maps: number): ProbeDefinition {
  return {
    name: `attn-only-parser-${maps}`,
    params: [
      { name: 'w', shape: [maps, 1], init: 'zeros' },
      // ROOT_start, ROOT_end: 1, not 0 (with w = 0 and r = 0 neither would ever move).
      { name: 'root', shape: [2], init: 'ones' },
    ],
    inputs: [
      { name: 'words', shape: ['B', 'n', 'n', maps] },
      { name: 'cls', shape: ['B', 'n', maps] },
      { name: 'sep', shape: ['B', 'n', maps] },
      { name: 'mask', shape: ['B', 'n', 'c'] },
      { name: 'target', shape: ['B', 'n', 'c'] },
    ],
    build(g, p, inp) {
      const w = p.w!;
      const sWords = g.reshape(g.matmul(g.reshape(inp.words!, [-1, maps]), w), ['B', 'n', 'n']);
      const rStart = g.slice(p.root!, [0], [1], [0]);
      const rEnd = g.slice(p.root!, [1], [2], [0]);
      const rootMaps = g.add(g.mul(inp.cls!, rStart), g.mul(inp.sep!, rEnd));
      const sRoot = g.reshape(g.matmul(g.reshape(rootMaps, [-1, maps]), w), ['B', 'n', 1]);
      const logits = g.add(g.concat([sRoot, sWords], 2), inp.mask!);
      const logp = g.logSoftmax(logits, 2);
      const loss = g.neg(g.reduceSum(g.mul(inp.target!, logp), [0, 1, 2]));
      return { loss, outputs: { logits } };
    },
  };
}

/** One sentence's parser input: per layer, its word-level attention [heads, n+2, n+2]. */
export interface ParserSentence {
  n: number;
  maps: readonly ArrayLike<number>[];
  /** 1-based gold heads (0 = ROOT). */
  heads: readonly number[];
  /** Words that count towards UAS and the loss weight (false for gold punct). */
  scored: readonly boolean[];
}

/**
 * Feeds for a batch of sentences padded to the longest: map k = (layer l, head h) at l·H + h,
 * transposes at L·H + l·H + h. Padded words get zero target weight; padded candidates −1e9.
 * Every real word weighs 1/(real words in the batch), so the loss is the batch's mean.
 */
export function parserFeeds(batch: readonly ParserSentence[], heads: number, transpose: boolean): { feeds: Record<string, Feed>; count: number } {
  const B = batch.length;
  const L = batch[0]?.maps.length ?? 0;
  const M = parserMapCount(L, heads, transpose);
  const n = Math.max(1, ...batch.map((s) => s.n));
  const c = n + 1;
  const words = new Float32Array(B * n * n * M);
  const cls = new Float32Array(B * n * M);
  const sep = new Float32Array(B * n * M);
  const mask = new Float32Array(B * n * c);
  const target = new Float32Array(B * n * c);
  const count = batch.reduce((a, s) => a + s.n, 0);
  batch.forEach((s, b) => {
    const G = s.n + 2;
    for (let l = 0; l < L; l++) {
      const m = s.maps[l]!;
      for (let h = 0; h < heads; h++) {
        const base = h * G * G;
        const k = l * heads + h;
        const kt = L * heads + k;
        for (let i = 0; i < s.n; i++) {
          const row = ((b * n + i) * M);
          cls[row + k] = m[base + (i + 1) * G]!;
          sep[row + k] = m[base + (i + 1) * G + G - 1]!;
          if (transpose) {
            cls[row + kt] = m[base + i + 1]!;
            sep[row + kt] = m[base + (G - 1) * G + i + 1]!;
          }
          for (let j = 0; j < s.n; j++) {
            const at = ((b * n + i) * n + j) * M;
            words[at + k] = m[base + (i + 1) * G + j + 1]!;
            if (transpose) words[at + kt] = m[base + (j + 1) * G + i + 1]!;
          }
        }
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c; j++) if (i >= s.n || j > s.n) mask[(b * n + i) * c + j] = -1e9;
      if (i < s.n) target[(b * n + i) * c + s.heads[i]!] = 1 / count;
    }
  });
  return {
    feeds: {
      words: { data: words, dims: [B, n, n, M] },
      cls: { data: cls, dims: [B, n, M] },
      sep: { data: sep, dims: [B, n, M] },
      mask: { data: mask, dims: [B, n, c] },
      target: { data: target, dims: [B, n, c] },
    },
    count,
  };
}

/** Predicted heads (0 = ROOT) from the logits [B, n, n+1] of a batch. */
export function parserPredictions(logits: Float32Array, batch: readonly ParserSentence[]): Int32Array[] {
  const n = Math.max(1, ...batch.map((s) => s.n));
  const c = n + 1;
  return batch.map((s, b) => {
    const out = new Int32Array(s.n);
    for (let i = 0; i < s.n; i++) {
      let best = -Infinity;
      for (let j = 0; j <= s.n; j++) {
        const v = logits[(b * n + i) * c + j]!;
        if (v > best) {
          best = v;
          out[i] = j;
        }
      }
    }
    return out;
  });
}

/** UAS over scored words: correct / total. */
export function parserUas(preds: readonly Int32Array[], batch: readonly ParserSentence[]): { correct: number; total: number } {
  let correct = 0;
  let total = 0;
  batch.forEach((s, b) => {
    for (let i = 0; i < s.n; i++) {
      if (!s.scored[i]) continue;
      total++;
      if (preds[b]![i] === s.heads[i]) correct++;
    }
  });
  return { correct, total };
}
