/**
 * The edge probe of Tenney et al. 2019 as one ProbeDefinition (REFERENCES.md §3.1–3.2; jiant
 * modules/edge_probing.py, simple_modules.py, AllenNLP scalar_mix.py and
 * self_attentive_span_extractor.py), compiled by probe-model.ts (gradients derived):
 *   h      = γ·Σ_ℓ softmax(w)_ℓ h_ℓ over the unit's layers (scalar mix; a single layer as is)
 *   p_k    = h·W_k + b_k per word piece, 256-d, separately for span1 and span2 (Conv1d k=1)
 *   s_k    = self-attentive pooling of p_k over each span's pieces (or their mean)
 *   logits = MLP([s_1; s_2]) (Linear→Tanh→LayerNorm→Dropout 0.3→Linear) or one Linear
 *   loss   = sigmoid BCE against k-hot labels, mean over targets × labels
 *            (or softmax cross-entropy for MDL's single-label code lengths)
 */
import { linear, linearParams, mlp, mlpParams, scalarMix, scalarMixParams, sigmoidBce, softmaxCrossEntropy, spanAttentionParams, spanAttentionPool } from './blocks.js';
import type { Graph, ProbeDefinition, Value } from './probe-model.js';

export interface EdgeProbeShape {
  hidden: number;
  /** Layers mixed; 0 for a single layer without a mix. */
  mixLayers: number;
  twoSpan: boolean;
  labels: number;
  classifier: 'mlp' | 'linear';
  pooling: 'attn' | 'mean';
  loss: 'sigmoid' | 'softmax';
  /** Projection and hidden width (jiant: classifier_hid_dim 256). */
  width?: number;
  dropout?: number;
}

export function edgeProbeDefinition(s: EdgeProbeShape): ProbeDefinition {
  const d = s.width ?? 256;
  const dIn = s.twoSpan ? 2 * d : d;
  const sides = s.twoSpan ? [1, 2] : [1];
  return {
    name: `edge-probe-${s.mixLayers ? `mix${s.mixLayers}` : 'single'}-${s.twoSpan ? 'two' : 'one'}-span-${s.classifier}-${s.pooling}-${s.loss}`,
    params: [
      ...(s.mixLayers ? scalarMixParams('mix', s.mixLayers) : []),
      ...sides.flatMap((k) => [...linearParams(`proj${k}`, s.hidden, d), ...(s.pooling === 'attn' ? spanAttentionParams(`attn${k}`, d) : [])]),
      ...(s.classifier === 'mlp' ? mlpParams('cls', dIn, d, s.labels) : linearParams('cls', dIn, s.labels)),
    ],
    inputs: [
      { name: 'x', shape: s.mixLayers ? [s.mixLayers, 'pieces', s.hidden] : ['pieces', s.hidden] },
      ...sides.flatMap((k) => [
        { name: `idx${k}`, shape: ['targets', `w${k}`], type: 'int64' as const },
        { name: `in${k}`, shape: ['targets', `w${k}`], type: 'bool' as const },
      ]),
      s.loss === 'sigmoid' ? { name: 'y', shape: ['targets', s.labels] } : { name: 'y', shape: ['targets'], type: 'int64' as const },
    ],
    build(g: Graph, p: Record<string, Value>, x: Record<string, Value>): { loss: Value; outputs: Record<string, Value> } {
      const h = s.mixLayers ? scalarMix(g, x.x!, p['mix.weights']!, p['mix.gamma']!) : x.x!;
      const pooled = sides.map((k) => {
        const proj = linear(g, h, p[`proj${k}.weight`]!, p[`proj${k}.bias`]!);
        // Mean pooling = attention with equal scores (constant zero scorer).
        const w = s.pooling === 'attn' ? p[`attn${k}.weight`]! : g.constant(new Float64Array(d), [d, 1]);
        const b = s.pooling === 'attn' ? p[`attn${k}.bias`]! : g.constant([0], [1]);
        return spanAttentionPool(g, proj, x[`idx${k}`]!, x[`in${k}`]!, w, b);
      });
      const z = pooled.length === 2 ? g.concat(pooled, 1) : pooled[0]!;
      const logits = s.classifier === 'mlp' ? mlp(g, z, p, 'cls', { dropout: s.dropout ?? 0.3, maskName: 'cls.dropout' }) : linear(g, z, p['cls.weight']!, p['cls.bias']!);
      if (s.loss === 'sigmoid') return { loss: sigmoidBce(g, logits, x.y!), outputs: { probs: g.sigmoid(logits) } };
      return { loss: softmaxCrossEntropy(g, logits, x.y!), outputs: { log_probs: g.logSoftmax(logits, -1) } };
    },
  };
}
