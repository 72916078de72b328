import { create, toJsonString } from "@bufbuild/protobuf";
import { JobSchema, WatchJobResponseSchema, type WatchJobResponse } from "@flip/gen/flip/hub/v1/training_pb.js";
import type { Principal } from "../auth/principal.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { JOB_CHANGED_CHANNEL, JOB_QUEUE_CHANNEL } from "./events.js";
import { visibleJob } from "./jobs.js";
import { findJob, isEnded } from "./rows.js";
import { eventToProto, jobToProto, metricToProto, type EventRow, type MetricRow } from "./to-proto.js";

/** Re-read even without a notice this often (a queue position moves when another job starts). */
const POLL_MS = 2_000;
const BATCH = 1000;

/**
 * A job's stored events and metrics, then new ones as they arrive, with the job itself whenever it
 * changed; ends once the job has ended and everything stored was sent.
 */
export async function* watchJob(deps: HubDeps, caller: Principal, jobId: string, signal: AbortSignal): AsyncGenerator<WatchJobResponse> {
  const em = () => deps.db.em();
  await visibleJob(em(), caller, jobId);
  let wake: (() => void) | undefined;
  let pending = false;
  const poke = () => {
    pending = true;
    wake?.();
  };
  const offChanged = await deps.db.notifier.subscribe(JOB_CHANGED_CHANNEL, (id) => id === jobId && poke());
  const offQueue = await deps.db.notifier.subscribe(JOB_QUEUE_CHANNEL, poke);
  const offReconnect = deps.db.notifier.onReconnect(poke);
  signal.addEventListener("abort", poke);
  let lastEvent = "0";
  let lastMetric = "0";
  let lastJob = "";
  try {
    while (!signal.aborted) {
      pending = false;
      const row = (await findJob(em(), jobId))!;
      let more = true;
      while (more && !signal.aborted) {
        const events = await em().execute<EventRow[]>("select * from job_event where job_id = ? and id > ? order by id limit ?", [jobId, lastEvent, BATCH]);
        for (const e of events) yield create(WatchJobResponseSchema, { item: { case: "event", value: eventToProto(e) } });
        if (events.length) lastEvent = events[events.length - 1]!.id;
        const metrics = await em().execute<(MetricRow & { code: string })[]>(
          "select m.*, t.code from job_metric m join trust t on t.id = m.trust_id where m.job_id = ? and m.id > ? order by m.id limit ?",
          [jobId, lastMetric, BATCH],
        );
        for (const m of metrics) yield create(WatchJobResponseSchema, { item: { case: "metric", value: metricToProto(m) } });
        if (metrics.length) lastMetric = metrics[metrics.length - 1]!.id;
        more = events.length === BATCH || metrics.length === BATCH;
      }
      const job = await jobToProto(em(), row);
      const json = toJsonString(JobSchema, job);
      if (json !== lastJob) {
        lastJob = json;
        yield create(WatchJobResponseSchema, { item: { case: "job", value: job } });
      }
      if (isEnded(row.state)) {
        // Anything stored with the end (the last reports) was read after the row: one more pass sends it.
        const again = await em().execute<{ n: number }[]>(
          "select (select count(*) from job_event where job_id = ? and id > ?)::int + (select count(*) from job_metric where job_id = ? and id > ?)::int as n",
          [jobId, lastEvent, jobId, lastMetric],
        );
        if ((again[0]?.n ?? 0) === 0) return;
        continue;
      }
      if (!pending) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, POLL_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  } finally {
    offChanged();
    offQueue();
    offReconnect();
    signal.removeEventListener("abort", poke);
  }
}
