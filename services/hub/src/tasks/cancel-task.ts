import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { notify } from "../db/notifier.js";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import { encodeTaskEnded, TASK_ENDED_CHANNEL } from "./channels.js";
import { isFinalState, Task } from "./entities.js";
import { hubTaskError, TaskErrorCode } from "./task-json.js";
import { isUuid } from "../domain/ids.js";

export interface CancelRequest {
  taskId: string;
  reason: string;
  actor: string;
}

/**
 * Ends an open task as cancelled; the replica holding the trust's link tells the gateway to stop it.
 * A task that already ended is returned unchanged (cancelling is idempotent), and a result that
 * arrives later is acknowledged but not recorded.
 */
export async function cancelTask(em: EntityManager, req: CancelRequest): Promise<Task> {
  if (!isUuid(req.taskId)) throw new InvalidInputError("task_id", "must be a task id (UUID)");
  const reason = req.reason.trim();
  if (reason.length > 500) throw new InvalidInputError("reason", "must be at most 500 characters");
  return await em.transactional(async (tx) => {
    const task = await tx.findOne(Task, { id: req.taskId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!task) throw new NotFoundError("task", req.taskId);
    if (isFinalState(task.state)) return task;
    const before = { state: task.state, attempt: task.attempt };
    const now = new Date();
    const why = `cancelled by ${req.actor}${reason ? `: ${reason}` : ""}`;
    task.state = "cancelled";
    task.endedAt = now;
    task.updatedAt = now;
    task.endReason = why;
    task.error = hubTaskError(TaskErrorCode.CANCELLED, why);
    task.streamId = null;
    await tx.flush();
    await tx.execute("update task_attempt set outcome = 'cancelled', ended_at = ?, detail = ? where task_id = ? and attempt = ? and outcome is null", [
      now,
      why,
      task.id,
      task.attempt,
    ]);
    await appendAudit(tx, { actor: req.actor, action: "task.cancelled", target: `task:${task.id}`, before, after: { state: "cancelled", reason } });
    await notify(tx, TASK_ENDED_CHANNEL, encodeTaskEnded({ taskId: task.id, trustId: task.trustId, kind: task.kind, state: "cancelled" }));
    return task;
  });
}
