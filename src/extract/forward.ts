import type { Encoding, Engine } from '../model/types.js';
import { RuntimeFailure } from '../util/errors.js';
import { defaultMaxTokens, padBatch, planBatches } from './batching.js';
import { defaultStride, ownerWindows, planWindows, type Window } from './windows.js';

/**
 * Runs encoded sentences through an engine in length-bucketed batches and hands back, per
 * sentence, piece-level hidden states of the asked layers and (for sentences that fit the
 * model) piece-level attention. Sentences longer than the model's positions are cut into
 * overlapping windows (windows.ts) and stitched; `onSentence` is called once a sentence's
 * windows are all done, in batch order (callers that need corpus order restore it by index).
 *
 * One forward pass is kept in flight: batch i+1 is handed to the engine before batch i's
 * outputs are copied out and given to `onSentence`, so an engine that computes off this thread
 * (the onnx engine's worker, onnx-worker.ts) runs while the caller pools and writes (issue 14).
 */
export interface SentenceForward {
  /** Index into the `encodings` given. */
  index: number;
  /** Pieces incl. [CLS] and [SEP]. */
  numPieces: number;
  /** 1 when the sentence fit; otherwise the number of windows it was cut into. */
  windows: number;
  /**
   * Hidden-state index (0 = embeddings) → [numPieces, hidden]. For a sentence that fit, a view
   * into its batch's output (engines return fresh buffers per forward; holding the view keeps
   * that batch's buffer alive); for a windowed one, a stitched copy.
   */
  states: Map<number, Float32Array>;
  /** Layer (1-based) → [heads, numPieces, numPieces]; null for windowed sentences. */
  attentions: Map<number, Float32Array> | null;
}

export interface ForwardOptions {
  hiddenStates: readonly number[];
  attentions: readonly number[];
  batchSize: number;
  /** Cap on padded tokens per batch (default batchSize x 128), so long sentences come in smaller batches. */
  maxTokens?: number;
  padId: number;
  /** Positions the model has (config.maxPositionEmbeddings). */
  maxPositions: number;
  stride?: number;
  onSentence: (r: SentenceForward) => void | Promise<void>;
  /** [L, heads] factors on the attention probabilities (head ablation); default all 1. */
  headMask?: Float32Array;
  /**
   * Called after each batch with the number of real (unpadded) tokens it held, the seconds this
   * thread waited for its forward pass (the part not overlapped with other work), and the
   * seconds spent copying its outputs out (not counting `onSentence`).
   */
  onBatch?: (tokens: number, forwardSeconds: number, copySeconds: number) => void;
}

interface Segment {
  sentence: number;
  window: number;
  ids: ArrayLike<number>;
}

interface Pending {
  numPieces: number;
  windows: Window[];
  owner: Int32Array | null;
  left: number;
  states: Map<number, Float32Array>;
  attentions: Map<number, Float32Array> | null;
}

export async function forwardSentences(engine: Engine, encodings: readonly Pick<Encoding, 'ids'>[] | readonly { ids: ArrayLike<number> }[], opts: ForwardOptions): Promise<{ windowed: number[] }> {
  const hidden = engine.config.hiddenSize;
  const heads = engine.config.numAttentionHeads;
  const content = opts.maxPositions - 2;
  const stride = opts.stride ?? defaultStride(content);
  const segments: Segment[] = [];
  const pending = new Map<number, Pending>();
  const windowed: number[] = [];
  encodings.forEach((enc, s) => {
    const P = enc.ids.length;
    if (P <= opts.maxPositions) {
      segments.push({ sentence: s, window: 0, ids: enc.ids });
      return;
    }
    windowed.push(s);
    const windows = planWindows(P - 2, content, stride);
    windows.forEach((w, wi) => {
      const ids = new Int32Array(w.end - w.start + 2);
      ids[0] = enc.ids[0]!;
      for (let i = w.start; i < w.end; i++) ids[i - w.start + 1] = enc.ids[i + 1]!;
      ids[ids.length - 1] = enc.ids[P - 1]!;
      segments.push({ sentence: s, window: wi, ids });
    });
  });

  const want = { hiddenStates: [...opts.hiddenStates], attentions: [...opts.attentions] };
  const plan = planBatches(segments.map((g) => g.ids.length), opts.batchSize, opts.maxTokens ?? defaultMaxTokens(opts.batchSize));
  const launch = (i: number) => {
    const segs = plan[i]!.map((j) => segments[j]!);
    const batch = padBatch(segs.map((g) => g.ids), opts.padId);
    const out = engine.forward(opts.headMask ? { ...batch, headMask: opts.headMask } : batch, want);
    // Awaited below; if this thread fails first, the in-flight batch's error is not the news.
    out.catch(() => undefined);
    return { segs, T: batch.seqLen, out };
  };
  let next = plan.length > 0 ? launch(0) : null;
  for (let bi = 0; bi < plan.length; bi++) {
    const { segs, T, out: pendingOut } = next!;
    const tf0 = performance.now();
    const out = await pendingOut;
    const forwardSeconds = (performance.now() - tf0) / 1000;
    next = bi + 1 < plan.length ? launch(bi + 1) : null;
    const tc0 = performance.now();
    let callbackSeconds = 0;
    let tokens = 0;
    for (let b = 0; b < segs.length; b++) {
      const seg = segs[b]!;
      const len = seg.ids.length;
      tokens += len;
      let p = pending.get(seg.sentence);
      if (!p) {
        const enc = encodings[seg.sentence]!;
        const isWindowed = enc.ids.length > opts.maxPositions;
        const windows = isWindowed ? planWindows(enc.ids.length - 2, content, stride) : [{ start: 0, end: enc.ids.length - 2 }];
        p = {
          numPieces: enc.ids.length,
          windows,
          owner: isWindowed ? ownerWindows(enc.ids.length - 2, windows) : null,
          left: windows.length,
          states: new Map(),
          attentions: isWindowed ? null : new Map(),
        };
        pending.set(seg.sentence, p);
      }
      const P = p.numPieces;
      for (const l of opts.hiddenStates) {
        const hs = out.hiddenStates[l];
        if (!hs) throw new RuntimeFailure(`engine ${engine.kind}/${engine.backend} did not return hidden state ${l}`);
        const rowBase = b * T * hidden;
        if (!p.owner) {
          // The sentence's rows of the batch output, as a view (no copy): each forward returns
          // fresh buffers, so the view stays valid for as long as the caller holds it.
          p.states.set(l, hs.data.subarray(rowBase, rowBase + len * hidden));
          continue;
        }
        let dst = p.states.get(l);
        if (!dst) p.states.set(l, (dst = new Float32Array(P * hidden)));
        const w = p.windows[seg.window]!;
        if (seg.window === 0) dst.set(hs.data.subarray(rowBase, rowBase + hidden), 0);
        if (seg.window === p.windows.length - 1) dst.set(hs.data.subarray(rowBase + (len - 1) * hidden, rowBase + len * hidden), (P - 1) * hidden);
        for (let i = w.start; i < w.end; i++) {
          if (p.owner[i] !== seg.window) continue;
          const src = rowBase + (i - w.start + 1) * hidden;
          dst.set(hs.data.subarray(src, src + hidden), (i + 1) * hidden);
        }
      }
      if (p.attentions) {
        for (const l of opts.attentions) {
          const att = out.attentions[l - 1];
          if (!att) throw new RuntimeFailure(`engine ${engine.kind}/${engine.backend} did not return attention of layer ${l}`);
          const a = new Float32Array(heads * len * len);
          for (let h = 0; h < heads; h++) {
            for (let r = 0; r < len; r++) {
              const src = ((b * heads + h) * T + r) * T;
              a.set(att.data.subarray(src, src + len), (h * len + r) * len);
            }
          }
          p.attentions.set(l, a);
        }
      }
      if (--p.left === 0) {
        pending.delete(seg.sentence);
        const cb0 = performance.now();
        await opts.onSentence({ index: seg.sentence, numPieces: P, windows: p.windows.length, states: p.states, attentions: p.attentions });
        callbackSeconds += (performance.now() - cb0) / 1000;
      }
    }
    opts.onBatch?.(tokens, forwardSeconds, (performance.now() - tc0) / 1000 - callbackSeconds);
  }
  return { windowed };
}
