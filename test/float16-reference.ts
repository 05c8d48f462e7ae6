/**
 * An arithmetic reference for float32 → float16 rounding (IEEE 754 binary16, round to nearest,
 * ties to even), written without bit manipulation so that it shares nothing with
 * src/model/safetensors.ts f32ToF16. Validated against hand-computed bit patterns and numpy's
 * astype(float16) in test/float16.test.ts.
 */

/** The float16 value nearest to v (ties to even mantissa), as a number; ±Infinity past 65504. */
export function nearestHalf(v: number): number {
  if (Number.isNaN(v) || !Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  // Below 2^-14 the spacing stays 2^-24 (subnormals).
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp; // exact: a power-of-two division of a float32 in float64
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const out = r * ulp;
  return Math.sign(v) * (out > 65504 ? Infinity : out);
}
