import type { EntityManager } from "@mikro-orm/postgresql";
import { notify } from "../db/notifier.js";

/** Channel that says "something about job <id> changed": watchers re-read its state, events and metrics. */
export const JOB_CHANGED_CHANNEL = "flip_job_changed";
/** Channel that wakes the scheduler: a job was queued or ended, or capacity changed. */
export const JOB_QUEUE_CHANNEL = "flip_job_queue";

export type JobEventKindName =
  | "queued"
  | "started"
  | "round_started"
  | "update_received"
  | "round_aggregated"
  | "trust_failed"
  | "ended"
  | "log"
  | "workload"
  | "round_failed";

export interface NewJobEvent {
  kind: JobEventKindName;
  trustId?: string | null;
  round?: number;
  message?: string;
  details?: Record<string, string>;
  /** Stored once per job and key: an event repeated by a retry or a second replica is dropped. */
  dedupeKey?: string;
}

/** Stores events of a job (in the caller's transaction) and tells watchers on commit. */
export async function appendJobEvents(tx: EntityManager, jobId: string, events: NewJobEvent[]): Promise<void> {
  if (events.length === 0) return;
  const now = new Date();
  await tx.execute(
    `insert into job_event (job_id, kind, trust_id, round, message, details, at, dedupe_key)
     select ?, e.kind, e.trust_id, e.round, e.message, e.details, ?, e.dedupe_key
     from jsonb_to_recordset(?::jsonb) as e(kind text, trust_id uuid, round integer, message text, details jsonb, dedupe_key text)
     on conflict (job_id, dedupe_key) do nothing`,
    [
      jobId,
      now,
      JSON.stringify(
        events.map((e) => ({
          kind: e.kind,
          trust_id: e.trustId ?? null,
          round: e.round ?? 0,
          message: (e.message ?? "").slice(0, 2000),
          details: e.details ?? {},
          dedupe_key: e.dedupeKey ?? null,
        })),
      ),
    ],
  );
  await jobChanged(tx, jobId);
}

export async function jobChanged(tx: EntityManager, jobId: string): Promise<void> {
  await notify(tx, JOB_CHANGED_CHANNEL, jobId);
}

export async function wakeScheduler(tx: EntityManager): Promise<void> {
  await notify(tx, JOB_QUEUE_CHANNEL, "");
}
