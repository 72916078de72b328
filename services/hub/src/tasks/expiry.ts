import type { EntityManager } from "@mikro-orm/postgresql";
import { taskEndedNoticeSql } from "./channels.js";

/**
 * Ends open tasks whose deadline passed, at most `batch` per call, and announces each. Any number of
 * replicas may run this at once: SKIP LOCKED hands each overdue row to exactly one of them.
 * Returns how many tasks expired.
 */
export async function expireOverdueTasks(em: EntityManager, batch = 500): Promise<number> {
  const now = new Date();
  const rows = await em.execute<unknown[]>(
    `with overdue as (
       select id, state as was from task
       where state in ('pending', 'offered', 'running') and deadline <= ?
       order by deadline limit ? for update skip locked
     ),
     expired as (
       update task t set state = 'expired', ended_at = ?, updated_at = ?, stream_id = null,
         end_reason = 'deadline passed while the task was ' || overdue.was,
         error = jsonb_build_object('code', 'TASK_ERROR_CODE_TIMEOUT', 'message', 'deadline passed while the task was ' || overdue.was)
       from overdue where t.id = overdue.id
       returning t.id, t.trust_id, t.kind, t.attempt
     ),
     attempts as (
       update task_attempt a set outcome = 'expired', ended_at = ?, detail = 'deadline passed'
       from expired where a.task_id = expired.id and a.attempt = expired.attempt and a.outcome is null
     )
     select ${taskEndedNoticeSql("expired", "expired")} from expired`,
    [now, batch, now, now, now],
  );
  return rows.length;
}
