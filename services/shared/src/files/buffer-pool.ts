/**
 * Buffers of one size, handed out and given back, so a transfer that reads a file into buffers reuses a
 * few of them instead of allocating one per read: each allocation is memory outside the JS heap that
 * only a full garbage collection frees, and a gigabyte of them costs the process a dozen or more.
 */
export class BufferPool {
  private readonly free: Uint8Array[] = [];

  constructor(
    readonly bufferBytes: number,
    /** Buffers kept for reuse at most; more are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  take(): Uint8Array {
    return this.free.pop() ?? Buffer.allocUnsafe(this.bufferBytes);
  }

  /** Returns a buffer taken from this pool; nothing may read or write it afterwards. */
  give(buf: Uint8Array): void {
    if (buf.length === this.bufferBytes && this.free.length < this.keep) this.free.push(buf);
  }
}
