/**
 * Distances between attention heads and their 2-D embedding: Clark et al. 2019 §6 (head
 * clustering). Jensen–Shannon divergence as the authors' `head_distances.py`
 * (clarkkev/attention-analysis@c2b73f9, lines 27-38): each head's piece-level attention smoothed
 * as 0.999·A + 0.001/n, then for every pair of heads Σ_i JS(A_a[i,:] ‖ A_b[i,:]) (natural log)
 * summed over sentences. We divide the sum by the number of query rows (so the figure is the mean
 * divergence per attending piece; the authors keep the raw sum: the same picture up to scale).
 * The embedding is classical (Torgerson) MDS of that matrix — our choice; the authors ran
 * scikit-learn's SMACOF metric MDS (`General_Analysis.ipynb` cell 18), which is iterative and
 * seed-dependent.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

export class HeadDivergence {
  /** Sum of divergences, [K, K] row-major. */
  private readonly sums: Float64Array;
  private rows = 0;
  sentences = 0;

  /** @param heads K, the number of heads compared (all layers × heads per layer) */
  constructor(readonly heads: number) {
    this.sums = new Float64Array(heads * heads);
  }

  /**
   * @param maps K maps of one sentence, each [n, n] (row = from); the same n for all
   */
  add(maps: readonly ArrayLike<number>[], n: number): void {
    const K = this.heads;
    if (maps.length !== K) throw new RangeError(`expected ${K} attention maps, got ${maps.length}`);
    const size = n * n;
    const smoothed = maps.map((m) => {
      if (m.length < size) throw new RangeError(`attention map has ${m.length} values, expected ${n}×${n}`);
      const s = new Float64Array(size);
      for (let x = 0; x < size; x++) s[x] = 0.999 * m[x]! + 0.001 / n;
      return s;
    });
    // JS(p, q) = ½ Σ p ln p + ½ Σ q ln q − Σ m ln m, with m = (p + q)/2.
    const selfTerm = smoothed.map((s) => {
      let t = 0;
      for (let x = 0; x < size; x++) t += s[x]! * Math.log(s[x]!);
      return t;
    });
    for (let a = 0; a < K; a++) {
      const p = smoothed[a]!;
      for (let b = a + 1; b < K; b++) {
        const q = smoothed[b]!;
        let mix = 0;
        for (let x = 0; x < size; x++) {
          const m = 0.5 * (p[x]! + q[x]!);
          mix += m * Math.log(m);
        }
        const js = 0.5 * selfTerm[a]! + 0.5 * selfTerm[b]! - mix;
        this.sums[a * K + b]! += js;
        this.sums[b * K + a]! += js;
      }
    }
    this.rows += n;
    this.sentences++;
  }

  /** Mean divergence per query row, [K, K] row-major. */
  result(): Float64Array {
    return this.sums.map((v) => (this.rows ? v / this.rows : Number.NaN));
  }
}

/**
 * Classical MDS: B = −½·J·D²·J (J the centering matrix), coordinates = the top `dims`
 * eigenvectors of B scaled by √λ (negative eigenvalues give 0). Eigenvector signs are fixed so
 * that each column's largest-magnitude entry is positive, so the output is deterministic.
 * @param dist [K, K] symmetric dissimilarities, row-major
 * @returns    K points of `dims` coordinates
 */
export function classicalMds(dist: ArrayLike<number>, K: number, dims = 2): number[][] {
  const d2 = new Matrix(K, K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) d2.set(i, j, dist[i * K + j]! ** 2);
  const rowMean = d2.mean('row');
  const colMean = d2.mean('column');
  const all = d2.mean();
  const b = new Matrix(K, K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) b.set(i, j, -0.5 * (d2.get(i, j) - rowMean[i]! - colMean[j]! + all));
  const evd = new EigenvalueDecomposition(b, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const vectors = evd.eigenvectorMatrix;
  const order = values.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]).slice(0, dims);
  const points = Array.from({ length: K }, () => new Array<number>(dims).fill(0));
  order.forEach(([lambda, col], d) => {
    const scale = Math.sqrt(Math.max(lambda, 0));
    let big = 0;
    for (let i = 0; i < K; i++) if (Math.abs(vectors.get(i, col)) > Math.abs(big)) big = vectors.get(i, col);
    const sign = big < 0 ? -1 : 1;
    for (let i = 0; i < K; i++) points[i]![d] = sign * vectors.get(i, col) * scale;
  });
  return points;
}
