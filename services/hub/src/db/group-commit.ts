interface Waiting<In, Out> {
  item: In;
  resolve(out: Out): void;
  reject(e: unknown): void;
}

/**
 * Group commit: items submitted while a batch is being written wait and go together in the next one.
 * An idle hub writes each item at once (no timer, no added latency); a busy one writes hundreds per
 * database round trip instead of one. `write` gets a batch and returns one answer per item, in order.
 */
export class GroupCommit<In, Out> {
  private queue: Waiting<In, Out>[] = [];
  private writing = false;

  constructor(
    private readonly write: (batch: In[]) => Promise<Out[]>,
    private readonly maxBatch = 512,
  ) {}

  submit(item: In): Promise<Out> {
    const answer = new Promise<Out>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    if (!this.writing) void this.drain();
    return answer;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const answers = await this.write(batch.map((w) => w.item));
          batch.forEach((w, i) => w.resolve(answers[i]!));
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      this.writing = false;
    }
  }
}
