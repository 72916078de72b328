import type { EntityManager } from "@mikro-orm/postgresql";
import { taskEndedNoticeSql } from "./channels.js";
import { hubTaskError, TaskErrorCode } from "./task-json.js";

/**
 * Fails the pending tasks of `kind` whose trust is linked now with a gateway that declared no capacity
 * for the kind: that gateway is never offered them, so without this they would wait for their
 * deadline. `message` (given the trust's code) says why, in the words the task's owner reads. A task of
 * a trust that is offline waits: the gateway that links next may run it. Returns the tasks failed, each
 * with its message.
 */
export async function failUnsupportedTasks(
  em: EntityManager,
  opts: { kind: string; trustIds?: string[]; message: (trustCode: string) => string },
): Promise<{ id: string; message: string }[]> {
  const trusts = opts.trustIds ? `{${opts.trustIds.join(",")}}` : null;
  const candidates = await em.execute<{ id: string; code: string }[]>(
    `select t.id, tr.code from task t
     join trust_link l on l.trust_id = t.trust_id
     join trust tr on tr.id = t.trust_id
     where t.kind = ? and t.state = 'pending' and (l.capacity -> t.kind) is null and (?::uuid[] is null or t.trust_id = any(?::uuid[]))`,
    [opts.kind, trusts, trusts],
  );
  if (candidates.length === 0) return [];
  const now = new Date();
  const messages = candidates.map((c) => ({ id: c.id, message: opts.message(c.code) }));
  const failed = await em.execute<{ id: string }[]>(
    `with c as (
       select * from jsonb_to_recordset(?::jsonb) as c(id uuid, message text)
     ),
     ended as (
       update task t set state = 'failed', ended_at = ?, updated_at = ?, stream_id = null, end_reason = c.message,
         error = jsonb_set(?::jsonb, '{message}', to_jsonb(c.message))
       from c where t.id = c.id and t.state = 'pending'
       returning t.id, t.trust_id, t.kind
     )
     select id, ${taskEndedNoticeSql("ended", "failed")} from ended`,
    [JSON.stringify(messages), now, now, JSON.stringify(hubTaskError(TaskErrorCode.UNSUPPORTED, ""))],
  );
  return messages.filter((m) => failed.some((f) => f.id === m.id));
}
