/**
 * An unbounded push queue read as an AsyncIterable: the outbound side of a long-lived stream, fed by
 * many producers (timers, notifications, task completions) and drained by one consumer (the RPC).
 * `end()` finishes the iteration after the queued items; `fail(err)` makes the next read throw at once,
 * dropping what is queued (the stream is being torn down, so those items have nowhere to go).
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  /** Queues an item; returns false (and drops it) when the queue has ended or failed. */
  push(item: T): boolean {
    if (this.ended || this.failure) return false;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
    return true;
  }

  end(): void {
    if (this.ended || this.failure) return;
    this.ended = true;
    if (this.items.length === 0) this.settleWaiter();
  }

  fail(error: unknown): void {
    if (this.ended || this.failure) return;
    this.failure = { error };
    this.items.length = 0;
    this.settleWaiter();
  }

  get closed(): boolean {
    return this.ended || this.failure !== undefined;
  }

  get size(): number {
    return this.items.length;
  }

  private settleWaiter(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.failure) w.reject(this.failure.error);
    else w.resolve({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter) return Promise.reject(new Error("AsyncQueue supports one reader at a time"));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.end();
        this.items.length = 0;
        return { value: undefined, done: true };
      },
      // The reader tells the producer it gave up (Connect does this when a call ends): stop queuing.
      throw: async (e?: unknown) => {
        this.fail(e);
        return { value: undefined, done: true };
      },
    };
  }
}
