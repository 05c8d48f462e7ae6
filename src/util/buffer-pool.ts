/**
 * ArrayBuffers handed out and given back, so a loop that reads a batch every step (a probe's
 * trainer, src/probes/structural-train.ts) writes into memory it touched a moment ago. A fresh
 * buffer per batch costs a page fault per 4 KiB page on first touch (measured ~5 µs each on the
 * 2-core VM of docs/performance.md) and malloc/free of megabytes per step.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  /** `keep`: the most buffers held while unused (the smallest are dropped first). */
  constructor(private readonly keep = 6) {}

  /** A buffer of at least `bytes` (the smallest free one that fits, else a new one; contents undefined). */
  readonly take = (bytes: number): ArrayBuffer => {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const n = this.free[i]!.byteLength;
      if (n >= bytes && (best < 0 || n < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    // Rounded up to 256 KiB so a buffer also fits the slightly larger batches that follow.
    const size = Math.ceil(Math.max(bytes, 1) / 262144) * 262144;
    return Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
  };

  /** Buffers the caller no longer reads (a detached buffer, moved to another thread, is skipped). */
  readonly give = (buffers: readonly ArrayBuffer[]): void => {
    for (const b of buffers) if (b.byteLength > 0 && !this.free.includes(b)) this.free.push(b);
    if (this.free.length > this.keep) {
      this.free.sort((a, b) => b.byteLength - a.byteLength);
      this.free.length = this.keep;
    }
  };
}
