import type { BatchObservableCallback, Meter } from "@opentelemetry/api";
import { LinkStatus } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { taskKindNames } from "@flip/shared/link/task-kinds.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database } from "../db/database.js";
import { OPEN_TASK_STATES } from "../tasks/entities.js";
import { JOB_STATES } from "../training/rows.js";
import { linkStatusOf } from "../trusts/to-proto.js";

/** Scrapes within this long of the last read are answered from it: the database is read at most this often. */
const REFRESH_MS = 5_000;

interface ClusterCounts {
  trusts: { code: string; online: boolean }[];
  openTasks: { kind: string; state: string; n: number; oldest: Date }[];
  jobs: { state: string; n: number }[];
}

/**
 * Cluster-wide gauges read from the database, so every replica reports the same values: each enabled
 * trust online or not, open tasks by kind and state with the age of the oldest pending one, and jobs by
 * state. Three small queries (open tasks through their partial index), only when scraped and at most
 * every REFRESH_MS. When the database cannot be read the gauges report nothing until it can (their
 * series go absent rather than stale).
 */
export function observeDatabaseGauges(meter: Meter, deps: { db: Database; offlineAfterMs: number; log: Logger }): void {
  const trustOnline = meter.createObservableGauge("flip_trust_online", {
    description: "1 when the trust's gateway was heard from within FLIP_OFFLINE_AFTER_MS (by any replica), else 0; enabled trusts only",
  });
  const openTasks = meter.createObservableGauge("flip_tasks_open", {
    description: "Tasks not yet ended, by kind and state (pending, offered, running), across all replicas",
    unit: "{task}",
  });
  const oldestPending = meter.createObservableGauge("flip_task_oldest_pending_seconds", {
    description: "Age of the oldest pending task, by kind; 0 when none is pending",
    unit: "s",
  });
  const jobs = meter.createObservableGauge("flip_jobs", { description: "Training jobs by state, across all replicas", unit: "{job}" });
  const counts = new CachedRead(() => readClusterCounts(deps.db, deps.offlineAfterMs), deps.log);

  const observe: BatchObservableCallback = async (result) => {
    const c = await counts.get();
    if (!c) return;
    for (const t of c.trusts) result.observe(trustOnline, t.online ? 1 : 0, { trust: t.code });
    // Every kind and open state is reported, 0 included, so a series never vanishes when its queue drains.
    const now = Date.now();
    for (const kind of taskKindNames) {
      for (const state of OPEN_TASK_STATES) {
        result.observe(openTasks, c.openTasks.find((r) => r.kind === kind && r.state === state)?.n ?? 0, { kind, state });
      }
      const pending = c.openTasks.find((r) => r.kind === kind && r.state === "pending");
      result.observe(oldestPending, pending ? Math.max(0, (now - pending.oldest.getTime()) / 1000) : 0, { kind });
    }
    for (const state of JOB_STATES) result.observe(jobs, c.jobs.find((r) => r.state === state)?.n ?? 0, { state });
  };
  meter.addBatchObservableCallback(observe, [trustOnline, openTasks, oldestPending, jobs]);
}

async function readClusterCounts(db: Database, offlineAfterMs: number): Promise<ClusterCounts> {
  const em = db.em();
  const trusts = await em.execute<{ code: string; last_seen_at: string | null }[]>("select code, last_seen_at from trust where disabled_at is null");
  const openTasks = await em.execute<{ kind: string; state: string; n: number; oldest: string }[]>(
    `select kind, state, count(*)::int as n, min(created_at) as oldest from task
     where state in ('pending', 'offered', 'running') group by kind, state`,
  );
  const jobs = await em.execute<{ state: string; n: number }[]>("select state, count(*)::int as n from job group by state");
  const now = Date.now();
  return {
    trusts: trusts.map((t) => ({
      code: t.code,
      online: linkStatusOf({ lastSeenAt: t.last_seen_at === null ? null : new Date(t.last_seen_at) }, offlineAfterMs, now) === LinkStatus.ONLINE,
    })),
    openTasks: openTasks.map((r) => ({ ...r, oldest: new Date(r.oldest) })),
    jobs,
  };
}

/** The last result of `read`, read again when older than REFRESH_MS; scrapes that arrive meanwhile share one read. */
class CachedRead<T> {
  private value: T | undefined;
  private readAt = 0;
  private reading: Promise<T | undefined> | undefined;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly log: Logger,
  ) {}

  get(): Promise<T | undefined> {
    if (Date.now() - this.readAt < REFRESH_MS) return Promise.resolve(this.value);
    this.reading ??= this.read()
      .then(
        (v) => (this.value = v),
        (err: unknown) => {
          // A failure is remembered for REFRESH_MS too, so a database outage costs one attempt per interval.
          this.log.warn({ err }, "could not read the counts for metrics; the database gauges report nothing until it can");
          return (this.value = undefined);
        },
      )
      .finally(() => {
        this.readAt = Date.now();
        this.reading = undefined;
      });
    return this.reading;
  }
}
