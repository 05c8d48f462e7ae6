/**
 * Seeded randomness for probes and controls: --seed must fix every random choice
 * (initialisations, shuffles, samples). mulberry32 is a small 32-bit PRNG (Tommy Ettinger's
 * public-domain generator), good enough for shuffling and uniform initialisation.
 * (src/model/random.ts keeps its own xorshift128 + polar normals for fast weight init.)
 */
/** Uniform [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle into a new array. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
