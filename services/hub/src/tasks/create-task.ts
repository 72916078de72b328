import type { EntityManager } from "@mikro-orm/postgresql";
import type { TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindName, taskKindOfSpec } from "@flip/shared/link/task-kinds.js";
import { injectTraceContext } from "@flip/shared/telemetry/trace-context.js";
import { appendAudit } from "../audit/chain.js";
import { notify } from "../db/notifier.js";
import { FailedPreconditionError, InvalidInputError, NotFoundError } from "../rpc/domain-errors.js";
import { Trust } from "../trusts/entities.js";
import { TASK_READY_CHANNEL } from "./channels.js";
import { Task } from "./entities.js";
import { specToJson } from "./task-json.js";

export const DEFAULT_TASK_TIMEOUT_MS = 5 * 60_000;
export const MAX_TASK_TIMEOUT_MS = 24 * 3_600_000;
export const MIN_TASK_TIMEOUT_MS = 1_000;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const MAX_ATTEMPTS_LIMIT = 10;

export interface NewTask {
  trustId: string;
  spec: TaskSpec;
  projectId?: string;
  /** Time allowed from creation to result; default 5 minutes, 1 second to 24 hours. */
  timeoutMs?: number;
  /** Offers allowed before the task fails; default 3, at most 10. */
  maxAttempts?: number;
  /** Who asked, for the audit log: a user id, "bootstrap-admin", "system". */
  actor: string;
  /** The trace the task continues; defaults to the active context (the RPC that created it). */
  traceContext?: Record<string, string>;
}

/**
 * Stores a task for a trust and wakes the hub replica that holds the trust's link. Runs in the caller's
 * transaction when `em` is inside one (the task, its audit entry and the wake-up commit together), else
 * in its own. The task is offered as soon as the trust is connected and has capacity for its kind.
 */
export async function createTask(em: EntityManager, input: NewTask): Promise<Task> {
  const kind = taskKindOfSpec(input.spec);
  if (kind === undefined) throw new InvalidInputError("spec", "set exactly one task kind");
  const timeoutMs = input.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < MIN_TASK_TIMEOUT_MS || timeoutMs > MAX_TASK_TIMEOUT_MS) {
    throw new InvalidInputError("timeout", "must be from 1 second to 24 hours");
  }
  const maxAttempts = input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT) {
    throw new InvalidInputError("max_attempts", `must be from 1 to ${MAX_ATTEMPTS_LIMIT}`);
  }
  return await em.transactional(async (tx) => {
    const trust = await tx.findOne(Trust, { id: input.trustId });
    if (!trust) throw new NotFoundError("trust", input.trustId);
    if (trust.disabledAt) throw new FailedPreconditionError(`trust "${trust.code}" is disabled; enable it before sending it tasks`);
    const now = new Date();
    const task = tx.create(Task, {
      trustId: trust.id,
      kind: taskKindName(kind),
      projectId: input.projectId ?? null,
      spec: specToJson(input.spec),
      state: "pending",
      attempt: 0,
      maxAttempts,
      deadline: new Date(now.getTime() + timeoutMs),
      createdAt: now,
      createdBy: input.actor,
      updatedAt: now,
      progress: 0,
      progressMessage: "",
      traceContext: input.traceContext ?? injectTraceContext(),
    });
    tx.persist(task);
    await tx.flush();
    await appendAudit(tx, {
      actor: input.actor,
      action: "task.created",
      target: `task:${task.id}`,
      after: { id: task.id, trustId: trust.id, trustCode: trust.code, kind: task.kind, projectId: task.projectId, maxAttempts, deadline: task.deadline.toISOString() },
    });
    await notify(tx, TASK_READY_CHANNEL, trust.id);
    return task;
  });
}
