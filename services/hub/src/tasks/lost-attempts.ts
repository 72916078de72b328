import type { EntityManager } from "../db/database.js";

/**
 * Sends the offered and running tasks of streams that are gone (released by the stale-link sweep: their
 * hub replica died without closing them) back to pending, and marks those attempts lost with `detail`.
 * Part of the caller's transaction; returns how many tasks went back.
 */
export async function loseAttemptsOfStreams(em: EntityManager, streamIds: string[], detail: string, now = new Date()): Promise<number> {
  if (streamIds.length === 0) return 0;
  const [row] = await em.execute<{ returned: number }[]>(
    `with lost as (
       update task t set state = 'pending', stream_id = null, updated_at = ?
       where t.stream_id in (select jsonb_array_elements_text(?::jsonb)::uuid) and t.state in ('offered', 'running')
       returning t.id, t.attempt
     ),
     attempts as (
       update task_attempt a set outcome = 'lost', ended_at = ?, detail = ?
       from lost where a.task_id = lost.id and a.attempt = lost.attempt and a.outcome is null
     )
     select count(*)::int as returned from lost`,
    [now, JSON.stringify(streamIds), now, detail],
  );
  return row?.returned ?? 0;
}
