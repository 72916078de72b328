import type { Logger } from "../logging/logger.js";

/**
 * Runs `work` every `intervalMs`, never overlapping itself (a slow run delays the next one rather than
 * stacking). One timer per job, however many things the job serves. Failures are logged and retried
 * on the next tick.
 */
export class PeriodicJob {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly work: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Runs the work now (unless a run is in progress) and returns when that run ends. */
  async runNow(): Promise<void> {
    if (this.running) return await this.running;
    this.running = (async () => {
      try {
        await this.work();
      } catch (err) {
        this.log.warn({ err, job: this.name }, "periodic job failed; retrying on the next tick");
      } finally {
        this.running = undefined;
      }
    })();
    return await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runNow().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
