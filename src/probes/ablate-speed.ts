import { OnnxEngine } from '../model/onnx-engine.js';
import { keepHeadsFromMask } from '../model/prune-heads.js';
import type { Engine, ForwardBatch, LoadedModel } from '../model/types.js';

/**
 * Speed of the pruned model (Michel et al. 2019 §4.3; HF run_bertology.py `prune_heads`): the
 * ONNX graph rebuilt without the masked heads (smaller Q/K/V and attention-output products),
 * timed against the full graph in the same process on the same batches, rounds alternating
 * (full, pruned, full, …) so a neighbour's load hits both alike; the median round counts.
 * Correctness: the pruned model's last hidden state must equal the full model run with the
 * head mask (largest |difference| over real tokens is reported; 1e-4 is the bar).
 */
export interface SpeedResult {
  headsPruned: number;
  fractionPruned: number;
  /** Real tokens per second over the set, median round. */
  fullTokensPerSecond: number;
  prunedTokensPerSecond: number;
  speedup: number;
  rounds: number;
  /** Largest |pruned − masked full| of the last hidden state over real tokens. */
  maxAbsDiff: number;
  fullSeconds: number[];
  prunedSeconds: number[];
}

export const SPEED_TOLERANCE = 1e-4;

export async function prunedSpeed(model: LoadedModel, full: Engine, batches: readonly ForwardBatch[], mask: Float32Array, rounds = 3): Promise<SpeedResult> {
  const L = model.config.numHiddenLayers;
  const want = { hiddenStates: [L], attentions: [] };
  const pruned = await OnnxEngine.create(model, { keepHeads: keepHeadsFromMask(model.config, mask) });
  try {
    let maxAbsDiff = 0;
    for (const b of batches) {
      const a = (await full.forward({ ...b, headMask: mask }, want)).hiddenStates[L]!.data;
      const c = (await pruned.forward(b, want)).hiddenStates[L]!.data;
      const per = a.length / (b.batchSize * b.seqLen);
      for (let i = 0; i < b.batchSize * b.seqLen; i++) {
        if (!b.attentionMask[i]) continue;
        for (let j = 0; j < per; j++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[i * per + j]! - c[i * per + j]!));
      }
    }
    const tokens = batches.reduce((s, b) => s + b.attentionMask.reduce((x, y) => x + y, 0), 0);
    const time = async (engine: Engine, headMask?: Float32Array) => {
      const t = performance.now();
      for (const b of batches) await engine.forward(headMask ? { ...b, headMask } : b, want);
      return (performance.now() - t) / 1000;
    };
    const fullSeconds: number[] = [];
    const prunedSeconds: number[] = [];
    for (let r = 0; r < rounds; r++) {
      fullSeconds.push(await time(full, mask));
      prunedSeconds.push(await time(pruned));
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
    const headsPruned = mask.reduce((s, v) => s + (v === 0 ? 1 : 0), 0);
    return {
      headsPruned,
      fractionPruned: headsPruned / mask.length,
      fullTokensPerSecond: tokens / median(fullSeconds),
      prunedTokensPerSecond: tokens / median(prunedSeconds),
      speedup: median(fullSeconds) / median(prunedSeconds),
      rounds,
      maxAbsDiff,
      fullSeconds,
      prunedSeconds,
    };
  } finally {
    await pruned.dispose();
  }
}
