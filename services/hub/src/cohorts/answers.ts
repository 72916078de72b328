import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { CohortOutcome, type TaskOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { TaskErrorCode, type TaskError } from "@flip/gen/flip/link/v1/link_pb.js";
import { ColumnSummarySchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { notify } from "../db/notifier.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import { readTaskEnded, type TaskEnded } from "../tasks/task-events.js";
import type { AnswerStateName } from "./entities.js";

/** Channel announcing that an answer of a cohort query changed (payload: query id). */
export const COHORT_ANSWER_CHANNEL = "flip_cohort_answer";

export interface AnswerUpdate {
  state: AnswerStateName;
  recordCount: number;
  columns: JsonValue | null;
  threshold: number;
  error: string | null;
}

/**
 * The researcher-facing category of a trust's failure. Only the validator's rule message (which quotes
 * the researcher's own SQL, never data) is passed through; everything else is reduced to a category.
 */
export function redactTaskError(e: TaskError | undefined, taskState: string): string {
  if (taskState === "expired") return "unavailable: the trust did not answer before the deadline";
  if (taskState === "cancelled") return "cancelled";
  switch (e?.code) {
    case TaskErrorCode.INVALID:
      return `invalid_query: ${e.message}`;
    case TaskErrorCode.DENIED:
      return "denied_by_policy";
    case TaskErrorCode.TIMEOUT:
      return "query_timeout";
    case TaskErrorCode.UNAVAILABLE:
      return "unavailable";
    default:
      return "internal_error";
  }
}

/** What a finished cohort task means for the trust's answer. */
export function answerFromTask(state: string, output: TaskOutput | undefined, error: TaskError | undefined): AnswerUpdate {
  if (state === "succeeded" && output?.kind.case === "cohortQuery") {
    const o = output.kind.value;
    const count = Number(o.recordCount);
    const answerState: AnswerStateName = o.outcome === CohortOutcome.SUPPRESSED ? "suppressed" : count === 0 ? "empty" : "ok";
    return {
      state: answerState,
      recordCount: answerState === "ok" ? count : 0,
      columns: answerState === "ok" ? o.columns.map((c) => toJson(ColumnSummarySchema, c)) : null,
      threshold: o.threshold,
      error: null,
    };
  }
  return { state: "error", recordCount: 0, columns: null, threshold: 0, error: redactTaskError(error, state) };
}

export function columnsFromJson(j: JsonValue | null | undefined) {
  if (!Array.isArray(j)) return [];
  return j.map((c) => fromJson(ColumnSummarySchema, c, { ignoreUnknownFields: true }));
}

/**
 * Moves the answer of a finished cohort task from pending to its outcome, and counts it in `metrics`.
 * Idempotent: an answer that is no longer pending is left alone, so duplicate or replayed notices change
 * (and count) nothing.
 */
export async function applyCohortTask(em: EntityManager, ended: TaskEnded, metrics: Pick<HubMetrics, "cohortAnswered">): Promise<boolean> {
  const update = answerFromTask(ended.state, ended.output, ended.error);
  const recorded = await em.transactional(async (tx) => {
    const rows = await tx.execute<{ query_id: string; trust_code: string; submitted_at: Date }[]>(
      `update cohort_answer a set state = ?, record_count = ?, columns = ?::jsonb, threshold = ?, error = ?, answered_at = ?
       from cohort_query q, trust t
       where a.task_id = ? and a.state = 'pending' and q.id = a.query_id and t.id = a.trust_id
       returning a.query_id, t.code as trust_code, q.created_at as submitted_at`,
      [update.state, update.recordCount, update.columns === null ? null : JSON.stringify(update.columns), update.threshold, update.error, ended.endedAt, ended.taskId],
    );
    const row = rows[0];
    if (row) await notify(tx, COHORT_ANSWER_CHANNEL, row.query_id);
    return row;
  });
  if (!recorded) return false;
  metrics.cohortAnswered(recorded.trust_code, update.state, new Date(recorded.submitted_at), ended.endedAt);
  return true;
}

/** Applies every finished task of a query whose answer is still pending (covers notices missed while down). */
export async function reconcileCohortQuery(em: EntityManager, queryId: string, metrics: Pick<HubMetrics, "cohortAnswered">): Promise<void> {
  const rows = await em.execute<{ task_id: string }[]>(
    `select a.task_id from cohort_answer a join task t on t.id = a.task_id
     where a.query_id = ? and a.state = 'pending' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')`,
    [queryId],
  );
  for (const r of rows) {
    const ended = await readTaskEnded(em.fork(), r.task_id);
    if (ended) await applyCohortTask(em.fork(), ended, metrics);
  }
}
