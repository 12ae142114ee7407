// Reusable read buffers for segment bodies. A fresh Buffer per 1–2 MB segment costs a malloc, page faults on the
// new pages, and — worse — V8 counts it as external memory and runs major GCs to reclaim it: at a few thousand
// segments a second that was a fifth of the origin's CPU. Buffers here are recycled once the response that used
// them has been handed to the kernel.

/** Smallest size class (smaller bodies just allocate: they come from Node's own slab pool). */
const MIN_CLASS = 64 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private idleBytes = 0;
  private readonly maxIdleBytes: number;
  private readonly maxBuffer: number;

  /**
   * @param maxIdleBytes bytes kept for reuse at most (beyond that, returned buffers are left to the GC)
   * @param maxBuffer the largest buffer pooled; larger bodies are allocated and dropped
   */
  constructor(opts: { maxIdleBytes: number; maxBuffer: number }) {
    this.maxIdleBytes = opts.maxIdleBytes;
    this.maxBuffer = opts.maxBuffer;
  }

  /** The size class for `length`: the next power of two from MIN_CLASS. */
  static classOf(length: number): number {
    let c = MIN_CLASS;
    while (c < length) c *= 2;
    return c;
  }

  /** A buffer of at least `length` bytes (contents undefined); give it back with release() when done. */
  take(length: number): Buffer {
    const size = BufferPool.classOf(length);
    if (size > this.maxBuffer) return Buffer.allocUnsafeSlow(length);
    const list = this.free.get(size);
    const b = list?.pop();
    if (b) {
      this.idleBytes -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Returns a buffer from take(); the caller must not touch it afterwards. */
  release(b: Buffer): void {
    const size = b.length;
    if (size !== BufferPool.classOf(size) || size > this.maxBuffer) return;
    if (this.idleBytes + size > this.maxIdleBytes) return;
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(b);
    this.idleBytes += size;
  }

  get idle(): number {
    return this.idleBytes;
  }
}
