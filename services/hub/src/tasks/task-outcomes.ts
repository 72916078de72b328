import type { EntityManager } from "@mikro-orm/postgresql";
import type { JsonValue } from "@bufbuild/protobuf";
import type { TaskError } from "@flip/gen/flip/link/v1/link_pb.js";
import type { TaskOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName, taskKindName, taskKindOfOutput } from "@flip/shared/link/task-kinds.js";
import { encodeTaskEnded, TASK_ENDED_CHANNEL, TASK_READY_CHANNEL, taskEndedNoticeSql } from "./channels.js";
import { isFinalState, type TaskStateName } from "./entities.js";
import { errorToJson, hubTaskError, outputToJson, TaskErrorCode } from "./task-json.js";
import { isUuid } from "../domain/ids.js";
import { jsonParam } from "./sql-params.js";
import type { SuccessBatcher } from "./success-batcher.js";

/**
 * What a trust reports about its tasks, recorded idempotently. Every update names the stream (acks and
 * progress) or the trust (results) it came from, so a gateway can only touch its own trust's tasks.
 */

/** Offered attempts a stream's gateway accepted. */
export interface StreamAcks {
  streamId: string;
  taskIds: string[];
}

/**
 * The gateways accepted these offered attempts: they are running. Many streams' acks go in one
 * statement; an id that is not (or no longer) its stream's offered task changes nothing.
 */
export async function recordAcks(em: EntityManager, acks: StreamAcks[]): Promise<void> {
  const rows = acks.flatMap((a) => a.taskIds.filter(isUuid).map((taskId) => ({ task_id: taskId, stream_id: a.streamId })));
  if (rows.length === 0) return;
  const now = new Date();
  await em.execute(
    `with a as (
       select * from jsonb_to_recordset(?::jsonb) as a(task_id uuid, stream_id uuid)
     ),
     -- An ack only changes what "running" shows: a row another statement holds (a result ending it) is
     -- skipped rather than waited for, so acks never take part in a lock cycle.
     free as (
       select t.id from task t join a on t.id = a.task_id and t.stream_id = a.stream_id
       where t.state = 'offered' for update of t skip locked
     ),
     acked as (
       update task t set state = 'running', updated_at = ?
       from free where t.id = free.id
       returning t.id, t.attempt
     )
     update task_attempt ta set acked_at = coalesce(ta.acked_at, ?) from acked where ta.task_id = acked.id and ta.attempt = acked.attempt`,
    [JSON.stringify(rows), now, now],
  );
}

/** Progress of a running attempt: 0..1, or negative when unknown. */
export async function recordProgress(em: EntityManager, streamId: string, taskId: string, fraction: number, message: string): Promise<boolean> {
  if (!isUuid(taskId)) return false;
  const bounded = Number.isFinite(fraction) ? Math.min(fraction, 1) : -1;
  const rows = await em.execute<{ id: string }[]>(
    `update task set state = 'running', progress = ?, progress_message = ?, updated_at = ?
     where id = ? and stream_id = ? and state in ('offered', 'running') returning id`,
    [bounded, message.slice(0, 500), new Date(), taskId, streamId],
  );
  return rows.length > 0;
}

export type ResultOutcome = { case: "output"; value: TaskOutput } | { case: "error"; value: TaskError };

export type ResultRecording =
  /** The result ended the task, or (a retryable error with attempts left) sent it back to pending. */
  | { recorded: true; state: TaskStateName; kind: string }
  /** Ignored: the task already ended (a repeat or a late result), or it is not this trust's. */
  | { recorded: false; why: "ended" | "unknown" };

/**
 * Records a trust's result for a task. The first result wins: once the task is final every later result
 * (a repeat after a reconnect, a second attempt's answer) is ignored. A success goes through `successes`
 * (group commit) when given, else in a statement of its own; anything else takes the careful path.
 */
export async function recordResult(em: EntityManager, trustId: string, taskId: string, outcome: ResultOutcome, successes?: SuccessBatcher): Promise<ResultRecording> {
  if (!isUuid(taskId)) return { recorded: false, why: "unknown" };
  // The common case, on every task's path from creation to "recorded", in one statement: an output of
  // the task's own kind for an open task of this trust. Anything else (a repeat, another trust's task,
  // the wrong kind) changes no row there and is sorted out by the careful path.
  const success = outcome.case === "output" ? successOf(trustId, taskId, outcome.value) : undefined;
  if (success) {
    const ended = successes ? await successes.end(success) : (await endSucceeded(em, [success])).has(taskId);
    if (ended) return { recorded: true, state: "succeeded", kind: success.kind };
  }
  return await recordResultCarefully(em, trustId, taskId, outcome);
}

/** A success as the batched statement takes it. */
export interface Success {
  trustId: string;
  taskId: string;
  kind: string;
  output: JsonValue;
}

/** The success an output claims to be, or undefined when its kind is unknown (the careful path says so). */
export function successOf(trustId: string, taskId: string, output: TaskOutput): Success | undefined {
  const kind = taskKindOfOutput(output);
  return kind === undefined ? undefined : { trustId, taskId, kind: taskKindName(kind), output: outputToJson(output) };
}

/**
 * Ends every listed task that is open, of that trust and of that kind as succeeded, with its attempt and
 * its announcement, in one statement; returns the ids it ended. Each task id must appear once.
 */
export async function endSucceeded(em: EntityManager, successes: Success[]): Promise<Set<string>> {
  const now = new Date();
  const rows = await em.execute<{ id: string }[]>(
    `with r as (
       select * from jsonb_to_recordset(?::jsonb) as r(task_id uuid, trust_id uuid, kind text, output jsonb)
     ),
     -- Rows are locked in id order, so two statements ending overlapping tasks wait for each other
     -- instead of deadlocking.
     locked as (
       select t.id, r.output from task t join r on t.id = r.task_id and t.trust_id = r.trust_id and t.kind = r.kind
       where t.state in ('pending', 'offered', 'running') order by t.id for update of t
     ),
     upd as (
       update task t set state = 'succeeded', output = locked.output, error = null, end_reason = 'completed at the trust', ended_at = ?, updated_at = ?,
         stream_id = null, progress = 1
       from locked where t.id = locked.id and t.state in ('pending', 'offered', 'running')
       returning t.id, t.attempt, t.trust_id, t.kind
     ),
     att as (
       update task_attempt a set outcome = 'succeeded', ended_at = ?, detail = 'completed' from upd
       where a.task_id = upd.id and a.attempt = upd.attempt and a.outcome is null
     )
     select id, ${taskEndedNoticeSql("upd", "succeeded")} from upd`,
    [JSON.stringify(successes.map((x) => ({ task_id: x.taskId, trust_id: x.trustId, kind: x.kind, output: x.output }))), now, now, now],
  );
  return new Set(rows.map((r) => r.id));
}

/** Every outcome, with the task row locked and read first: errors, retries, repeats, strangers, the wrong kind. */
async function recordResultCarefully(em: EntityManager, trustId: string, taskId: string, outcome: ResultOutcome): Promise<ResultRecording> {
  return await em.transactional(async (tx) => {
    const [task] = await tx.execute<{ trust_id: string; kind: string; state: TaskStateName; attempt: number; max_attempts: number; deadline: Date }[]>(
      "select trust_id, kind, state, attempt, max_attempts, deadline from task where id = ? for update",
      [taskId],
    );
    if (!task || task.trust_id !== trustId) return { recorded: false, why: "unknown" } as const;
    if (isFinalState(task.state)) return { recorded: false, why: "ended" } as const;
    const now = new Date();
    let output = outcome.case === "output" ? outputToJson(outcome.value) : null;
    let error = outcome.case === "error" ? errorToJson(outcome.value) : null;
    let detail = outcome.case === "error" ? `${TaskErrorCode[outcome.value.code] ?? "UNSPECIFIED"}: ${outcome.value.message}` : "completed";
    if (outcome.case === "output" && taskKindOfOutput(outcome.value) !== taskKindFromName(task.kind)) {
      // A gateway bug, not the researcher's: fail the task rather than store an answer to another question.
      output = null;
      detail = `the trust answered a ${task.kind} task with an output of another kind`;
      error = hubTaskError(TaskErrorCode.INTERNAL, detail);
    }
    const retry = outcome.case === "error" && outcome.value.retryable && task.attempt < task.max_attempts && new Date(task.deadline) > now;
    if (retry) {
      // Back to pending, with the error kept for operators until another attempt ends the task.
      await tx.execute(
        `with upd as (
           update task set state = 'pending', stream_id = null, error = ?::jsonb, updated_at = ? where id = ? returning id, attempt
         ),
         att as (
           update task_attempt a set outcome = 'retry', ended_at = ?, detail = ? from upd
           where a.task_id = upd.id and a.attempt = upd.attempt and a.outcome is null
         )
         select pg_notify(?, ?) from upd`,
        [jsonParam(error), now, taskId, now, detail, TASK_READY_CHANNEL, trustId],
      );
      return { recorded: true, state: "pending", kind: task.kind } as const;
    }
    const state: TaskStateName = output !== null ? "succeeded" : "failed";
    const endReason = state === "succeeded" ? "completed at the trust" : `failed at the trust: ${detail}`;
    // The end, its attempt and its announcement in one statement (this transaction holds the row lock).
    await tx.execute(
      `with upd as (
         update task set state = ?, output = ?::jsonb, error = ?::jsonb, end_reason = ?, ended_at = ?, updated_at = ?, stream_id = null,
           progress = case when ? then 1 else progress end
         where id = ? returning id, attempt
       ),
       att as (
         update task_attempt a set outcome = ?, ended_at = ?, detail = ? from upd
         where a.task_id = upd.id and a.attempt = upd.attempt and a.outcome is null
       )
       select pg_notify(?, ?) from upd`,
      [
        state,
        jsonParam(output),
        jsonParam(error),
        endReason,
        now,
        now,
        state === "succeeded",
        taskId,
        state,
        now,
        detail,
        TASK_ENDED_CHANNEL,
        encodeTaskEnded({ taskId, trustId, kind: task.kind, state }),
      ],
    );
    return { recorded: true, state, kind: task.kind } as const;
  });
}
