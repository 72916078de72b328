/**
 * Per-kind concurrency at the gateway: at most `limit(kind)` tasks of a kind run at once, the rest
 * wait in arrival order. The hub already honours the declared capacity; this keeps the promise even
 * when a cancelled task is still winding down while its replacement arrives.
 */
export class KindSlots {
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly limit: (kind: string) => number) {}

  /** Resolves with a release function once a slot of `kind` is free; rejects if `signal` aborts first. */
  acquire(kind: string, signal: AbortSignal): Promise<() => void> {
    signal.throwIfAborted();
    const release = this.releaser(kind);
    if ((this.active.get(kind) ?? 0) < Math.max(1, this.limit(kind))) {
      this.active.set(kind, (this.active.get(kind) ?? 0) + 1);
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(kind) ?? [];
      this.waiting.set(kind, queue);
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolve(release);
      };
      const onAbort = () => {
        const i = queue.indexOf(grant);
        if (i >= 0) queue.splice(i, 1);
        reject(signal.reason);
      };
      queue.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private releaser(kind: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.get(kind)?.shift();
      // The slot passes straight to the next waiter, so the active count stays the same.
      if (next) next();
      else this.active.set(kind, (this.active.get(kind) ?? 1) - 1);
    };
  }

  running(kind: string): number {
    return this.active.get(kind) ?? 0;
  }

  queued(kind: string): number {
    return this.waiting.get(kind)?.length ?? 0;
  }
}
