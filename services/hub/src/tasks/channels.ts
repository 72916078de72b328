import type { Notifier } from "../db/notifier.js";
import type { TaskStateName } from "./entities.js";

/**
 * Postgres channels of the task outbox. Every hub replica listens on both; a NOTIFY sent inside the
 * transaction that changed the row arrives on commit, so a wake-up never precedes its data.
 */

/** A trust has pending tasks to offer (payload: trust id). Only the replica holding its stream acts. */
export const TASK_READY_CHANNEL = "flip_task_ready";

/** A task reached a final state (payload: TaskEndedNotice as JSON). */
export const TASK_ENDED_CHANNEL = "flip_task_ended";

export interface TaskEndedNotice {
  taskId: string;
  trustId: string;
  /** Short kind name, e.g. "echo". */
  kind: string;
  state: TaskStateName;
}

/**
 * The notice as SQL, for statements that end many tasks at once. Kept next to the TS encoder so both
 * write the same keys. `alias` is a relation with columns id, trust_id, kind.
 */
export function taskEndedNoticeSql(alias: string, state: TaskStateName): string {
  return `pg_notify('${TASK_ENDED_CHANNEL}', json_build_object('taskId', ${alias}.id, 'trustId', ${alias}.trust_id, 'kind', ${alias}.kind, 'state', '${state}')::text)`;
}

export function encodeTaskEnded(n: TaskEndedNotice): string {
  return JSON.stringify({ taskId: n.taskId, trustId: n.trustId, kind: n.kind, state: n.state });
}

export function decodeTaskEnded(payload: string): TaskEndedNotice | undefined {
  try {
    const v = JSON.parse(payload) as Partial<TaskEndedNotice>;
    if (typeof v.taskId !== "string" || typeof v.trustId !== "string" || typeof v.kind !== "string" || typeof v.state !== "string") return undefined;
    return { taskId: v.taskId, trustId: v.trustId, kind: v.kind, state: v.state };
  } catch {
    return undefined;
  }
}

/** Calls `fn` for every well-formed task-ended notice; returns an unsubscribe function. */
export async function onTaskEndedNotice(notifier: Notifier, fn: (n: TaskEndedNotice) => void): Promise<() => void> {
  return await notifier.subscribe(TASK_ENDED_CHANNEL, (payload) => {
    const n = decodeTaskEnded(payload);
    if (n) fn(n);
  });
}
