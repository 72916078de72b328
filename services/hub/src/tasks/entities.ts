import { defineEntity, p } from "@mikro-orm/core";
import type { JsonValue } from "@bufbuild/protobuf";

/** Where a task is in its life; the first four are open, the rest are final. */
export const TASK_STATES = ["pending", "offered", "running", "succeeded", "failed", "cancelled", "expired"] as const;
export type TaskStateName = (typeof TASK_STATES)[number];
export const OPEN_TASK_STATES: readonly TaskStateName[] = ["pending", "offered", "running"];

export function isFinalState(s: TaskStateName): boolean {
  return !OPEN_TASK_STATES.includes(s);
}

/**
 * A unit of work for one trust, stored before it is sent (the link is only the delivery path).
 * `spec`, `output` and `error` hold the canonical proto JSON of TaskSpec, TaskOutput and TaskError.
 * `streamId` names the link stream that holds the current attempt while it is offered or running.
 */
export const TaskSchema = defineEntity({
  name: "Task",
  tableName: "task",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    trustId: p.uuid(),
    kind: p.string(),
    projectId: p.string().nullable(),
    spec: p.json<JsonValue>(),
    state: p.enum(TASK_STATES),
    attempt: p.integer(),
    maxAttempts: p.integer(),
    deadline: p.datetime(),
    createdAt: p.datetime().onCreate(() => new Date()),
    createdBy: p.string(),
    updatedAt: p.datetime().onCreate(() => new Date()),
    endedAt: p.datetime().nullable(),
    endReason: p.text().nullable(),
    output: p.json<JsonValue>().nullable(),
    error: p.json<JsonValue>().nullable(),
    progress: p.double().runtimeType("number"),
    progressMessage: p.text(),
    traceContext: p.json<Record<string, string>>(),
    streamId: p.uuid().nullable(),
  },
});
export class Task extends TaskSchema.class {}
TaskSchema.setClass(Task);

/** How one attempt of a task ended. */
export const ATTEMPT_OUTCOMES = ["succeeded", "failed", "retry", "lost", "cancelled", "expired"] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

/** One offer of a task to a trust's stream, kept for operators ("offered on hub-2, lost when the link dropped"). */
export const TaskAttemptSchema = defineEntity({
  name: "TaskAttempt",
  tableName: "task_attempt",
  properties: {
    taskId: p.uuid().primary(),
    attempt: p.integer().primary(),
    streamId: p.uuid(),
    hubInstance: p.string(),
    offeredAt: p.datetime(),
    ackedAt: p.datetime().nullable(),
    endedAt: p.datetime().nullable(),
    outcome: p.enum(ATTEMPT_OUTCOMES).nullable(),
    detail: p.text().nullable(),
  },
  primaryKeys: ["taskId", "attempt"],
});
export class TaskAttempt extends TaskAttemptSchema.class {}
TaskAttemptSchema.setClass(TaskAttempt);
