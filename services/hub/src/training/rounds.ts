import type { EntityManager } from "@mikro-orm/postgresql";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { extractTraceContext, injectTraceContext, linkTo, withSpan } from "@flip/shared/telemetry/trace-context.js";
import { readTaskEnded, type TaskEnded } from "../tasks/task-events.js";
import { appendJobEvents, jobChanged } from "./events.js";
import { endJob } from "./jobs.js";
import { storeReport } from "./reports.js";
import { createRoundTasks } from "./round-tasks.js";
import { lockJob, type JobRow, type RoundRow } from "./rows.js";

/** A round whose updates are all in and must now be averaged (outside the transaction that closed it). */
export interface RoundToAggregate {
  jobId: string;
  round: number;
}

/** A round that closing ended at once: too few updates arrived, or an evaluation's round is done. */
export interface EndedRound {
  jobId: string;
  round: number;
  outcome: "failed" | "evaluated";
  startedAt: Date;
}

/**
 * Opens round `round` of a running job: its row, one task per trust, and the event, in a span that the
 * round's tasks (and through them the trusts) and its aggregation continue. The first round continues the
 * trace of the call that created the job; each later round is a trace of its own, linked to the job's and
 * to the aggregation that opened it, so a job of many rounds is many traces of one round, not one without end.
 */
export async function openRound(tx: EntityManager, job: JobRow, round: number, weightsArtifactId: string | null): Promise<void> {
  const first = round === 1;
  const parent = first ? extractTraceContext(job.trace_context, ROOT_CONTEXT) : ROOT_CONTEXT;
  const links = first ? [] : [...linkTo(job.trace_context), ...linkTo(injectTraceContext())];
  const attributes = { "flip.job_id": job.id, "flip.round": round, "flip.rounds": job.rounds, "flip.trusts": job.trust_ids.length };
  await withSpan("training.open_round", parent, { attributes, links }, async () => {
    const traceContext = injectTraceContext();
    const now = new Date();
    const deadline = new Date(now.getTime() + job.round_timeout_s * 1000);
    await tx.execute(
      `insert into job_round (job_id, round, state, started_at, deadline, input_weights_artifact_id, trace_context) values (?, ?, 'open', ?, ?, ?, ?::jsonb)`,
      [job.id, round, now, deadline, weightsArtifactId, JSON.stringify(traceContext)],
    );
    await tx.execute("update job set current_round = ? where id = ?", [round, job.id]);
    await createRoundTasks(tx, { ...job, current_round: round }, { round, weightsArtifactId, deadline, traceContext });
    await appendJobEvents(tx, job.id, [{ kind: "round_started", round, message: `round ${round} of ${job.rounds} started`, dedupeKey: `round_started:${round}` }]);
  });
}

interface JobTaskRow {
  task_id: string;
  job_id: string;
  trust_id: string;
  round: number;
  action: "round" | "stop";
}

function trustCodeOf(tx: EntityManager, trustId: string): Promise<string> {
  return tx.execute<{ code: string }[]>("select code from trust where id = ?", [trustId]).then((r) => r[0]?.code ?? trustId);
}

/** The job a training task belongs to, and what the task was for; undefined for other tasks. */
export async function jobTaskOf(em: EntityManager, taskId: string): Promise<JobTaskRow | undefined> {
  const [jt] = await em.execute<JobTaskRow[]>("select * from job_task where task_id = ?", [taskId]);
  return jt;
}

/** Stores what a STOP task's result carried (the workload's last reports); a STOP changes nothing else. */
export async function applyStopTask(em: EntityManager, ended: TaskEnded, jt: JobTaskRow): Promise<void> {
  const output = ended.output?.kind.case === "training" ? ended.output.kind.value : undefined;
  if (!output?.report) return;
  await em.transactional(async (tx) => {
    await lockJob(tx, jt.job_id);
    await storeReport(tx, jt.job_id, jt.trust_id, output.report!);
  });
}

/**
 * Applies every ended, not yet applied round task of the job's open round, in one transaction under the
 * job's lock: an update is recorded once per trust and round, a failure as a miss, each report stored;
 * then the round closes if every task has an outcome. A round is judged on all of its ended tasks, never
 * on those whose notice happened to come first, and the ends of many trusts that arrive together are
 * applied together. Runs on every replica that hears an end; everything is conditional under the lock,
 * so a second run changes nothing. Returns the round this call closed: to aggregate, or ended.
 */
export async function applyOpenRound(em: EntityManager, jobId: string): Promise<RoundToAggregate | EndedRound | undefined> {
  return await em.transactional(async (tx) => {
    const job = await lockJob(tx, jobId);
    if (job.state !== "running") return undefined;
    const [round] = await tx.execute<RoundRow[]>("select * from job_round where job_id = ? and round = ?", [job.id, job.current_round]);
    if (!round || round.state !== "open") return undefined;
    const unapplied = await tx.execute<JobTaskRow[]>(
      `select jt.* from job_task jt join task t on t.id = jt.task_id
       where jt.job_id = ? and jt.round = ? and jt.action = 'round' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')
         and not exists (select 1 from job_update u where u.job_id = jt.job_id and u.round = jt.round and u.trust_id = jt.trust_id)
         and not exists (select 1 from job_event e where e.job_id = jt.job_id and e.dedupe_key = 'missed:' || jt.round || ':' || jt.trust_id)`,
      [job.id, round.round],
    );
    if (unapplied.length === 0) return undefined;
    for (const task of unapplied) {
      const outcome = await readTaskEnded(tx, task.task_id);
      if (outcome) await applyRoundOutcome(tx, job, task, outcome);
    }
    return await closeRoundIfDone(tx, job, round.round);
  });
}

async function applyRoundOutcome(tx: EntityManager, job: JobRow, jt: JobTaskRow, ended: TaskEnded): Promise<void> {
  const output = ended.output?.kind.case === "training" ? ended.output.kind.value : undefined;
  if (output?.report) await storeReport(tx, job.id, jt.trust_id, output.report);
  const code = await trustCodeOf(tx, jt.trust_id);
  const evaluate = job.kind === "evaluate";
  const samples = Number(output?.samples ?? 0n);
  const problem =
    ended.state !== "succeeded"
      ? ended.error?.message || ended.endReason || ended.state
      : !evaluate && !output?.updateArtifactId
        ? "the trust reported no update"
        : !evaluate && samples <= 0
          ? "the update was trained on 0 samples"
          : undefined;
  if (problem !== undefined) return await recordMiss(tx, job, jt, code, problem);
  const artifactOk =
    evaluate ||
    (await tx.execute<{ id: string }[]>("select id from artifact where id = ? and owner_trust_id = ? and complete", [output!.updateArtifactId, jt.trust_id])).length > 0;
  if (!artifactOk) return await recordMiss(tx, job, jt, code, "its update artifact is missing or incomplete");
  const inserted = await tx.execute<{ trust_id: string }[]>(
    `insert into job_update (job_id, round, trust_id, task_id, artifact_id, samples, received_at) values (?, ?, ?, ?, ?, ?, ?)
     on conflict do nothing returning trust_id`,
    [job.id, jt.round, jt.trust_id, jt.task_id, evaluate ? null : output!.updateArtifactId, samples, new Date()],
  );
  if (inserted.length === 0) return;
  await tx.execute("update job_trust set updates = updates + 1 where job_id = ? and trust_id = ?", [job.id, jt.trust_id]);
  await appendJobEvents(tx, job.id, [
    {
      kind: "update_received",
      trustId: jt.trust_id,
      round: jt.round,
      message: evaluate ? `${code} evaluated round ${jt.round}` : `${code} sent its round ${jt.round} update (${samples} samples)`,
      details: { trust: code, samples: String(samples) },
      dedupeKey: `update:${jt.round}:${jt.trust_id}`,
    },
  ]);
}

async function recordMiss(tx: EntityManager, job: JobRow, jt: JobTaskRow, code: string, reason: string): Promise<void> {
  // Once per trust and round (a second replica, or a reconcile, applies the same end again).
  const key = `missed:${jt.round}:${jt.trust_id}`;
  if ((await tx.execute("select 1 from job_event where job_id = ? and dedupe_key = ?", [job.id, key])).length) return;
  await tx.execute("update job_trust set missed = missed + 1, last_miss_reason = ? where job_id = ? and trust_id = ?", [reason.slice(0, 500), job.id, jt.trust_id]);
  await appendJobEvents(tx, job.id, [
    { kind: "trust_failed", trustId: jt.trust_id, round: jt.round, message: `${code} missed round ${jt.round}: ${reason}`, details: { trust: code }, dedupeKey: key },
  ]);
}

/**
 * Closes an open round once every one of its tasks has an applied outcome: enough updates → aggregating (or, for an
 * evaluation, the job completes); too few → the job fails, saying who missed and why.
 */
export async function closeRoundIfDone(tx: EntityManager, job: JobRow, roundNo: number): Promise<RoundToAggregate | EndedRound | undefined> {
  const [counts] = await tx.execute<{ open: number; updates: number; samples: string }[]>(
    // "Open": no outcome applied yet, whatever the task's state (one that ended a moment ago is applied
    // by its own notice, which then closes the round).
    `select (select count(*)::int from job_task jt
              where jt.job_id = ? and jt.round = ? and jt.action = 'round'
                and not exists (select 1 from job_update u where u.job_id = jt.job_id and u.round = jt.round and u.trust_id = jt.trust_id)
                and not exists (select 1 from job_event e where e.job_id = jt.job_id and e.dedupe_key = 'missed:' || jt.round || ':' || jt.trust_id)) as open,
            (select count(*)::int from job_update where job_id = ? and round = ?) as updates,
            (select coalesce(sum(samples), 0)::text from job_update where job_id = ? and round = ?) as samples`,
    [job.id, roundNo, job.id, roundNo, job.id, roundNo],
  );
  if (!counts || counts.open > 0) return undefined;
  if (counts.updates < job.min_updates) {
    const misses = await tx.execute<{ code: string; reason: string | null }[]>(
      `select tr.code, jtr.last_miss_reason as reason from job_trust jtr join trust tr on tr.id = jtr.trust_id
       where jtr.job_id = ? and not exists (select 1 from job_update u where u.job_id = jtr.job_id and u.round = ? and u.trust_id = jtr.trust_id)
       order by tr.code`,
      [job.id, roundNo],
    );
    const who = misses.map((m) => `${m.code}: ${m.reason ?? "no answer"}`).join("; ");
    const reason = `round ${roundNo}: ${counts.updates} of ${job.min_updates} needed update${job.min_updates === 1 ? "" : "s"} arrived (${who})`;
    const [failed] = await tx.execute<{ started_at: Date }[]>("update job_round set state = 'failed' where job_id = ? and round = ? returning started_at", [job.id, roundNo]);
    await appendJobEvents(tx, job.id, [{ kind: "round_failed", round: roundNo, message: reason, dedupeKey: `round_failed:${roundNo}` }]);
    await endJob(tx, job, "failed", reason, "system");
    return { jobId: job.id, round: roundNo, outcome: "failed", startedAt: new Date(failed!.started_at) };
  }
  if (job.kind === "evaluate") {
    const [evaluated] = await tx.execute<{ started_at: Date }[]>(
      "update job_round set state = 'aggregated', aggregated_at = ?, samples = ? where job_id = ? and round = ? returning started_at",
      [new Date(), counts.samples, job.id, roundNo],
    );
    await endJob(tx, job, "completed", `evaluated at ${counts.updates} trust${counts.updates === 1 ? "" : "s"}`, "system");
    return { jobId: job.id, round: roundNo, outcome: "evaluated", startedAt: new Date(evaluated!.started_at) };
  }
  await tx.execute("update job_round set state = 'aggregating', samples = ? where job_id = ? and round = ?", [counts.samples, job.id, roundNo]);
  await jobChanged(tx, job.id);
  return { jobId: job.id, round: roundNo };
}

/**
 * Records a round's aggregated weights (once: only a round still aggregating moves on), then opens the
 * next round or completes the job. Returns when the round started, if this call moved it on.
 */
export async function finishRound(em: EntityManager, jobId: string, roundNo: number, artifactId: string, sizeBytes: number): Promise<Date | undefined> {
  return await em.transactional(async (tx) => {
    const job = await lockJob(tx, jobId);
    const [moved] = await tx.execute<{ started_at: Date }[]>(
      "update job_round set state = 'aggregated', aggregated_at = ?, output_weights_artifact_id = ? where job_id = ? and round = ? and state = 'aggregating' returning started_at",
      [new Date(), artifactId, jobId, roundNo],
    );
    if (!moved) return undefined;
    const startedAt = new Date(moved.started_at);
    if (job.state !== "running") return startedAt;
    await tx.execute("update job set global_weights_artifact_id = ? where id = ?", [artifactId, jobId]);
    await appendJobEvents(tx, jobId, [
      { kind: "round_aggregated", round: roundNo, message: `round ${roundNo} aggregated (${(sizeBytes / 1048576).toFixed(2)} MiB of weights)`, details: { artifact: artifactId }, dedupeKey: `aggregated:${roundNo}` },
    ]);
    const updated = { ...job, global_weights_artifact_id: artifactId };
    if (roundNo >= job.rounds) await endJob(tx, updated, "completed", `${job.rounds} round${job.rounds === 1 ? "" : "s"} trained`, "system");
    else await openRound(tx, updated, roundNo + 1, artifactId);
    return startedAt;
  });
}

/** Fails a job whose round could not be averaged (e.g. updates with different tensors). Returns when the round started, if this call failed it. */
export async function failAggregation(em: EntityManager, jobId: string, roundNo: number, reason: string): Promise<Date | undefined> {
  return await em.transactional(async (tx) => {
    const job = await lockJob(tx, jobId);
    const [round] = await tx.execute<RoundRow[]>("select * from job_round where job_id = ? and round = ?", [jobId, roundNo]);
    if (round?.state !== "aggregating") return undefined;
    await tx.execute("update job_round set state = 'failed' where job_id = ? and round = ?", [jobId, roundNo]);
    await endJob(tx, job, "failed", `round ${roundNo} could not be aggregated: ${reason}`, "system");
    return new Date(round.started_at);
  });
}
