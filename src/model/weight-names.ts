import type { BertConfig } from './types.js';

/**
 * The canonical weight names and shapes of a BertModel (Hugging Face modeling_bert.py, no
 * prefix) and its MLM head (`cls.predictions.*`). Random init, the loaders' shape checks and
 * `model info` all read this one list, in this order.
 */
export interface WeightSpec {
  name: string;
  shape: number[];
  /** How BERT initialises it (HF BertPreTrainedModel._init_weights). */
  init: 'normal' | 'ones' | 'zeros';
  /** Part of the MLM head (optional in a checkpoint). */
  mlm?: boolean;
  /** Part of the pooler (optional in a checkpoint). */
  pooler?: boolean;
}

export const WORD_EMBEDDINGS = 'embeddings.word_embeddings.weight';
export const MLM_DECODER = 'cls.predictions.decoder.weight';

export function canonicalWeights(c: BertConfig): WeightSpec[] {
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const specs: WeightSpec[] = [];
  const linear = (prefix: string, out: number, inp: number, extra: Partial<WeightSpec> = {}) => {
    specs.push({ name: `${prefix}.weight`, shape: [out, inp], init: 'normal', ...extra });
    specs.push({ name: `${prefix}.bias`, shape: [out], init: 'zeros', ...extra });
  };
  const layerNorm = (prefix: string, extra: Partial<WeightSpec> = {}) => {
    specs.push({ name: `${prefix}.weight`, shape: [H], init: 'ones', ...extra });
    specs.push({ name: `${prefix}.bias`, shape: [H], init: 'zeros', ...extra });
  };
  specs.push({ name: WORD_EMBEDDINGS, shape: [c.vocabSize, H], init: 'normal' });
  specs.push({ name: 'embeddings.position_embeddings.weight', shape: [c.maxPositionEmbeddings, H], init: 'normal' });
  specs.push({ name: 'embeddings.token_type_embeddings.weight', shape: [c.typeVocabSize, H], init: 'normal' });
  layerNorm('embeddings.LayerNorm');
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}`;
    linear(`${p}.attention.self.query`, H, H);
    linear(`${p}.attention.self.key`, H, H);
    linear(`${p}.attention.self.value`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    layerNorm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    layerNorm(`${p}.output.LayerNorm`);
  }
  linear('pooler.dense', H, H, { pooler: true });
  linear('cls.predictions.transform.dense', H, H, { mlm: true });
  layerNorm('cls.predictions.transform.LayerNorm', { mlm: true });
  specs.push({ name: 'cls.predictions.bias', shape: [c.vocabSize], init: 'zeros', mlm: true });
  return specs;
}
