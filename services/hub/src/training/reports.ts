import type { EntityManager } from "@mikro-orm/postgresql";
import type { TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { appendJobEvents, jobChanged, type NewJobEvent } from "./events.js";

/** Most metric points, events and log lines one report may store (a runaway workload cannot flood the hub). */
export const MAX_REPORT_ITEMS = 5000;
const MAX_LABEL = 200;

/**
 * Stores what a workload reported: metrics, its events and the log lines its trust lets leave. Each
 * item carries the trust's sequence number, so a report that arrives live and again with the round's
 * result is stored once.
 */
export async function storeReport(tx: EntityManager, jobId: string, trustId: string, report: TrainingReport): Promise<void> {
  const metrics = report.metrics
    .filter((m) => m.label.trim() !== "" && Number.isFinite(m.value) && Number.isFinite(m.xValue))
    .slice(0, MAX_REPORT_ITEMS)
    .map((m) => ({
      seq: m.seq.toString(),
      label: m.label.slice(0, MAX_LABEL),
      value: m.value,
      round: m.round,
      x_label: m.xLabel.slice(0, MAX_LABEL),
      x_value: m.xValue,
    }));
  if (metrics.length) {
    await tx.execute(
      `insert into job_metric (job_id, trust_id, round, label, value, x_label, x_value, seq, recorded_at)
       select ?, ?, m.round, m.label, m.value, m.x_label, m.x_value, m.seq, ?
       from jsonb_to_recordset(?::jsonb) as m(seq bigint, label text, value double precision, round integer, x_label text, x_value double precision)
       on conflict (job_id, trust_id, seq) do nothing`,
      [jobId, trustId, new Date(), JSON.stringify(metrics)],
    );
  }
  const events: NewJobEvent[] = [
    ...report.events.slice(0, MAX_REPORT_ITEMS).map((e) => ({
      kind: "workload" as const,
      trustId,
      round: e.round,
      message: e.message,
      details: { ...Object.fromEntries(Object.entries(e.details).slice(0, 50)), kind: e.kind.slice(0, MAX_LABEL) },
      dedupeKey: `workload:${trustId}:${e.seq}`,
    })),
    ...report.logs.slice(0, MAX_REPORT_ITEMS).map((l) => ({
      kind: "log" as const,
      trustId,
      message: l.lines.join("\n"),
      dedupeKey: `log:${trustId}:${l.seq}`,
    })),
  ];
  if (events.length) await appendJobEvents(tx, jobId, events);
  else if (metrics.length) await jobChanged(tx, jobId);
}

/** A live report (TaskProgress) from a trust's gateway: stored only if the task is that trust's training task. */
export async function storeLiveReport(em: EntityManager, trustId: string, taskId: string, report: TrainingReport): Promise<void> {
  await em.transactional(async (tx) => {
    const [jt] = await tx.execute<{ job_id: string }[]>("select job_id from job_task where task_id = ? and trust_id = ?", [taskId, trustId]);
    if (jt) await storeReport(tx, jt.job_id, trustId, report);
  });
}
