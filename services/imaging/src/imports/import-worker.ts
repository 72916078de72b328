/**
 * Runs queued imports: up to `concurrency` studies at once, only inside the trust's import window, each
 * retried with back-off by importStudy. Wakes when studies are queued, when a retry falls due, and when
 * the window opens. Studies left importing by an earlier process are queued again at start (resume).
 */
import { claimDueStudies, nextDueAt, requeueInterrupted } from "../catalog/studies.js";
import type { ImagingMetrics } from "./import-metrics.js";
import { importStudy, type ImportDeps } from "./import-study.js";
import { msUntilOpen, windowOpen } from "./import-window.js";

/** The longest the worker sleeps without looking at the queue (another replica may have queued work). */
const MAX_IDLE_MS = 30_000;

export class ImportWorker {
  private readonly stopping = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private wake: (() => void) | undefined;
  /** Set when something changed since the loop last looked (so a wake-up between two sleeps is not lost). */
  private changed = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly deps: ImportDeps,
    private readonly metrics: ImagingMetrics,
  ) {
    metrics.observeStudiesInProgress(() => this.running.size);
  }

  /** Queues interrupted studies again and starts working. */
  async start(): Promise<void> {
    const requeued = await requeueInterrupted(this.deps.db);
    if (requeued > 0) this.deps.log.info({ studies: requeued }, "resuming imports interrupted by a restart");
    this.loop = this.run().catch((err: unknown) => this.deps.log.error({ err }, "import worker stopped unexpectedly"));
  }

  /** Looks at the queue now (after studies were queued). */
  poke(): void {
    this.changed = true;
    this.wake?.();
  }

  /** Whether imports are waiting for the window to open. */
  waitingForWindow(now = new Date()): boolean {
    return !windowOpen(this.deps.pacing.window, now);
  }

  /** Stops taking work and aborts studies in flight (they are queued again at the next start). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.poke();
    await this.loop;
    await Promise.all(this.running);
  }

  private sleep(ms: number): Promise<void> {
    if (this.changed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    const { db, pacing, log } = this.deps;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      this.changed = false;
      const closedFor = msUntilOpen(pacing.window, new Date());
      if (closedFor > 0) {
        log.debug({ window: pacing.window?.text, waitMs: closedFor }, "outside the import window");
        await this.sleep(Math.min(closedFor, MAX_IDLE_MS));
        continue;
      }
      const free = pacing.concurrency - this.running.size;
      const claimed = free > 0 ? await claimDueStudies(db, free).catch((err: unknown) => (log.warn({ err }, "cannot read the import queue"), [])) : [];
      for (const study of claimed) {
        const p: Promise<void> = importStudy(this.deps, study, signal)
          .then((outcome) => this.metrics.studyDone(outcome))
          .catch((err: unknown) => log.error({ err }, "recording an import outcome failed"))
          .finally(() => {
            this.running.delete(p);
            this.poke();
          });
        this.running.add(p);
      }
      if (signal.aborted) break;
      if (claimed.length > 0 && this.running.size < pacing.concurrency) continue;
      let waitMs = MAX_IDLE_MS;
      if (this.running.size < pacing.concurrency) {
        const due = await nextDueAt(db).catch(() => undefined);
        if (due) waitMs = Math.max(0, Math.min(waitMs, due.getTime() - Date.now()));
      }
      if (waitMs > 0) await this.sleep(waitMs);
    }
  }
}
