import type { EntityManager } from "@mikro-orm/postgresql";
import type { JsonValue } from "@bufbuild/protobuf";
import type { TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindName, taskKindOfSpec } from "@flip/shared/link/task-kinds.js";
import { injectTraceContext } from "@flip/shared/telemetry/trace-context.js";
import { auditAppendSql, type AuditRecord } from "../audit/chain.js";
import { FailedPreconditionError, InvalidInputError, NotFoundError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import { TASK_READY_CHANNEL } from "./channels.js";
import { Task } from "./entities.js";
import { specToJson } from "./task-json.js";

export const DEFAULT_TASK_TIMEOUT_MS = 5 * 60_000;
export const MAX_TASK_TIMEOUT_MS = 24 * 3_600_000;
export const MIN_TASK_TIMEOUT_MS = 1_000;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const MAX_ATTEMPTS_LIMIT = 10;

/** One task of a batch. */
export interface TaskRequest {
  trustId: string;
  spec: TaskSpec;
  projectId?: string;
  /** Time allowed from creation to result; default 5 minutes, 1 second to 24 hours. */
  timeoutMs?: number;
  /** Offers allowed before the task fails; default 3, at most 10. */
  maxAttempts?: number;
}

export interface BatchOptions {
  /** Who asked, for the audit log: a user id, "bootstrap-admin", "system". */
  actor: string;
  /** The trace the tasks continue; defaults to the active context (the RPC that created them). */
  traceContext?: Record<string, string>;
}

export interface NewTask extends TaskRequest, BatchOptions {}

/** A validated request. */
interface ValidTask {
  id: string;
  trustId: string;
  kind: string;
  projectId: string | null;
  spec: JsonValue;
  maxAttempts: number;
  timeoutMs: number;
}

/** A task as it is stored. */
interface NewTaskRow extends ValidTask {
  deadline: Date;
}

function validated(input: TaskRequest): ValidTask {
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
  return {
    id: crypto.randomUUID(),
    trustId: input.trustId,
    kind: taskKindName(kind),
    projectId: input.projectId ?? null,
    spec: specToJson(input.spec),
    maxAttempts,
    timeoutMs,
  };
}

/** Every trust of the batch, enabled; a missing trust is named by its id, a disabled one by its code. */
async function enabledTrustCodes(em: EntityManager, trustIds: string[]): Promise<Map<string, string>> {
  const invalid = trustIds.find((id) => !isUuid(id));
  if (invalid !== undefined) throw new NotFoundError("trust", invalid);
  const rows = await em.execute<{ id: string; code: string; disabled: boolean }[]>(
    "select id, code, disabled_at is not null as disabled from trust where id = any(?::uuid[])",
    // An array literal: execute() would spread a JavaScript array into a list. The ids are UUIDs (checked above).
    [`{${trustIds.join(",")}}`],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const id of trustIds) {
    const trust = byId.get(id);
    if (!trust) throw new NotFoundError("trust", id);
    if (trust.disabled) throw new FailedPreconditionError(`trust "${trust.code}" is disabled; enable it before sending it tasks`);
  }
  return new Map(rows.map((r) => [r.id, r.code]));
}

/**
 * The audit record of a batch. A batch of one is recorded as it always was ("task.created" on the task);
 * a larger one as one "task.batch_created" listing every task, with what all of them share said once.
 */
function auditRecordOf(tasks: NewTaskRow[], codes: Map<string, string>, actor: string): AuditRecord {
  const view = (t: NewTaskRow) => ({ id: t.id, trustId: t.trustId, trustCode: codes.get(t.trustId), kind: t.kind, projectId: t.projectId, maxAttempts: t.maxAttempts, deadline: t.deadline.toISOString() });
  const views = tasks.map(view);
  if (views.length === 1) return { actor, action: "task.created", target: `task:${tasks[0]!.id}`, after: views[0] };
  const shared: Record<string, unknown> = {};
  for (const key of ["kind", "projectId", "maxAttempts", "deadline"] as const) {
    if (views.every((v) => v[key] === views[0]![key])) shared[key] = views[0]![key];
  }
  const projectId = shared.projectId;
  return {
    actor,
    action: "task.batch_created",
    // A round of one project is found under the project, like the project's other entries.
    target: typeof projectId === "string" ? `project:${projectId}` : "tasks",
    after: {
      count: views.length,
      ...shared,
      tasks: views.map((v) => Object.fromEntries(Object.entries(v).filter(([key]) => !(key in shared)))),
    },
  };
}

/**
 * Stores one task for each trust of the batch and wakes the hub replicas that hold their links, all or
 * nothing: any invalid request, missing or disabled trust fails the whole batch. Two round trips
 * whatever the batch size: one reads the trusts, then one statement inserts every task, appends one
 * audit entry and sends the wake-ups, and (outside a transaction) commits. Runs in the caller's
 * transaction when `em` is inside one (the tasks, their audit entry and the wake-ups commit together).
 * Tasks are returned in request order.
 */
export async function createTasks(em: EntityManager, requests: TaskRequest[], opts: BatchOptions): Promise<Task[]> {
  if (requests.length === 0) throw new InvalidInputError("trusts", "give at least one trust");
  const valid = requests.map(validated);
  const seen = new Set<string>();
  for (const v of valid) {
    if (seen.has(v.trustId)) throw new InvalidInputError("trusts", `trust "${v.trustId}" is listed twice; a batch holds one task per trust`);
    seen.add(v.trustId);
  }
  const codes = await enabledTrustCodes(em, valid.map((v) => v.trustId));
  const traceContext = opts.traceContext ?? injectTraceContext();
  const now = new Date();
  const rows: NewTaskRow[] = valid.map((v) => ({ ...v, deadline: new Date(now.getTime() + v.timeoutMs) }));
  const audit = auditAppendSql(auditRecordOf(rows, codes, opts.actor));
  // One NOTIFY per trust (the link registry wakes a trust's link per payload), sent on commit.
  await em.execute(
    `with tasks as (
       insert into task (id, trust_id, kind, project_id, spec, state, attempt, max_attempts, deadline, created_at, created_by, updated_at, progress, progress_message, trace_context)
       select t.id, t.trust_id, t.kind, t.project_id, t.spec, 'pending', 0, t.max_attempts, t.deadline, ?, ?, ?, 0, '', ?::jsonb
       from jsonb_to_recordset(?::jsonb) as t(id uuid, trust_id uuid, kind text, project_id text, spec jsonb, max_attempts integer, deadline timestamptz)
       returning trust_id
     ),
     audit as (${audit.sql})
     select pg_notify('${TASK_READY_CHANNEL}', tasks.trust_id::text) from tasks, audit`,
    [
      now,
      opts.actor,
      now,
      JSON.stringify(traceContext),
      JSON.stringify(rows.map((r) => ({ id: r.id, trust_id: r.trustId, kind: r.kind, project_id: r.projectId, spec: r.spec, max_attempts: r.maxAttempts, deadline: r.deadline }))),
      ...audit.params,
    ],
  );
  // Managed and clean, as if read back, so a caller's later flush leaves them alone. Built after the
  // insert: the time from created_at to commit is part of every task's dispatch latency.
  return rows.map((r) =>
    em.merge(Task, {
      id: r.id,
      trustId: r.trustId,
      kind: r.kind,
      projectId: r.projectId,
      spec: r.spec,
      state: "pending",
      attempt: 0,
      maxAttempts: r.maxAttempts,
      deadline: r.deadline,
      createdAt: now,
      createdBy: opts.actor,
      updatedAt: now,
      endedAt: null,
      endReason: null,
      output: null,
      error: null,
      progress: 0,
      progressMessage: "",
      traceContext,
      streamId: null,
    }),
  );
}

/**
 * Stores a task for a trust and wakes the hub replica that holds the trust's link: a batch of one. The
 * task is offered as soon as the trust is connected and has capacity for its kind.
 */
export async function createTask(em: EntityManager, input: NewTask): Promise<Task> {
  const { actor, traceContext, ...request } = input;
  const [task] = await createTasks(em, [request], { actor, traceContext });
  return task!;
}
