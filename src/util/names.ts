import { InputError } from './errors.js';

/**
 * Activation names, one scheme everywhere (DESIGN.md): store keys, CLI --layers, CSV columns.
 *   layer.N   hidden state after layer N (N = 1..L); layer.0 is the embeddings output
 *   attn.N.H  attention of layer N, head H, both 1-based as the papers write "head 8-10"
 *   attn.N    all heads of layer N
 */
export const layerName = (n: number): string => `layer.${n}`;
export const attnName = (layer: number, head?: number): string =>
  head === undefined ? `attn.${layer}` : `attn.${layer}.${head}`;

export function parseLayerName(name: string): number {
  if (name === 'embeddings') return 0;
  const m = /^layer\.(\d+)$/.exec(name);
  if (!m) throw new InputError(`not a layer name: ${name}`, { expected: 'layer.N or embeddings', found: name });
  return Number(m[1]);
}

/**
 * Parse a layer SPEC against a model with `numLayers` transformer layers (so hidden states
 * 0..numLayers exist): `all`, `0-12`, `4,8,12`, `-1` (last), `-2`, mixes like `0,4-6,-1`,
 * and `layer.N` names. Returns sorted unique layer indices.
 */
export function parseLayerSpec(spec: string, numLayers: number): number[] {
  const out = new Set<number>();
  const bad = (found: string): never => {
    throw new InputError(`bad --layers value '${spec}'`, {
      expected: `all, a range like 0-${numLayers}, a list like 4,8,12, or -1 for the last layer (0..${numLayers})`,
      found,
      fix: `use layers between 0 (embeddings) and ${numLayers}`,
    });
  };
  const resolve = (tok: string): number => {
    const t = tok.trim().replace(/^layer\./, '');
    if (t === 'embeddings') return 0;
    if (!/^-?\d+$/.test(t)) bad(tok);
    const n = Number(t);
    const v = n < 0 ? numLayers + 1 + n : n;
    if (v < 0 || v > numLayers) bad(tok);
    return v;
  };
  for (const raw of spec.split(',')) {
    const part = raw.trim();
    if (part === '') bad(raw);
    if (part === 'all') {
      for (let i = 0; i <= numLayers; i++) out.add(i);
      continue;
    }
    const range = /^(-?[\w.]+)-(-?[\w.]+)$/.exec(part);
    if (range && !/^-\d+$/.test(part)) {
      const a = resolve(range[1]!);
      const b = resolve(range[2]!);
      if (a > b) bad(part);
      for (let i = a; i <= b; i++) out.add(i);
    } else {
      out.add(resolve(part));
    }
  }
  return [...out].sort((a, b) => a - b);
}
