/**
 * At most one upload stream per artifact in this process. A new stream of the same artifact (the client
 * reconnected while the old stream's handler has not yet seen the break) takes over: the old one is told
 * to stop, and the new one waits until the old one has synced and recorded its offset.
 * Across replicas the database's upload session fences a stale stream instead (see `entities.ts`).
 */
export class UploadLeases {
  private readonly held = new Map<string, { stop: AbortController; released: Promise<void> }>();

  async acquire(artifactId: string): Promise<UploadLease> {
    for (let cur = this.held.get(artifactId); cur; cur = this.held.get(artifactId)) {
      cur.stop.abort();
      await cur.released;
    }
    const stop = new AbortController();
    let resolve!: () => void;
    const released = new Promise<void>((r) => (resolve = r));
    this.held.set(artifactId, { stop, released });
    return {
      signal: stop.signal,
      release: () => {
        if (this.held.get(artifactId)?.stop === stop) this.held.delete(artifactId);
        resolve();
      },
    };
  }
}

export interface UploadLease {
  /** Aborted when a newer stream of the same artifact wants the lease. */
  signal: AbortSignal;
  release(): void;
}
