import type { JsonValue } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { isUuid } from "../domain/ids.js";
import { taskEndedNoticeSql } from "./channels.js";

/** A task claimed for one stream: everything an offer needs. */
export interface ClaimedTask {
  id: string;
  attempt: number;
  kind: string;
  spec: JsonValue;
  deadline: Date;
  projectId: string | null;
  traceContext: Record<string, string>;
  createdAt: Date;
}

interface ClaimRow {
  id: string;
  stream_id: string;
  attempt: number;
  kind: string;
  spec: JsonValue;
  deadline: Date;
  project_id: string | null;
  trace_context: Record<string, string>;
  created_at: Date;
}

/** One stream asking for up to `limit` pending tasks of one kind. */
export interface ClaimRequest {
  trustId: string;
  streamId: string;
  kind: string;
  limit: number;
}

/**
 * Each task of the request's trust and kind with its turn: its place among its creator's tasks (then
 * among the creator's tasks of its project) in the current busy spell, the open ones and those that
 * ended since the oldest pending one was queued. Claiming lowest turn first takes users round-robin, so
 * one researcher's backlog of slow queries cannot hold back another's single query: the backlog's
 * next task waits behind every user's earlier turns, including those its own finished tasks used.
 */
const FAIR_TURNS_SQL = `
  select f.id,
    row_number() over (partition by f.created_by order by f.created_at, f.id) as user_turn,
    row_number() over (partition by f.created_by, f.project_id order by f.created_at, f.id) as project_turn
  from task f
  where f.trust_id = req.trust_id and f.kind = req.kind
    and (f.state in ('pending', 'offered', 'running')
      or f.ended_at > (select min(q.created_at) from task q where q.trust_id = req.trust_id and q.kind = req.kind and q.state = 'pending'))`;

/**
 * Claims up to `limit` pending tasks of one kind for a stream, lowest turn first (FAIR_TURNS_SQL), then
 * oldest first, starting their next attempt, in one statement. It claims nothing unless the stream owns
 * the trust's link: the owner row is share-locked, so a stream replaced on this replica or another can
 * never start an attempt.
 * SKIP LOCKED: a row another transaction is ending (cancel, deadline) is left to it, never waited on.
 */
export async function claimPendingTasks(em: EntityManager, claim: ClaimRequest & { hubInstance: string }): Promise<ClaimedTask[]> {
  const [claimed] = await claimPendingTasksFor(em, claim.hubInstance, [claim]);
  return claimed!;
}

/**
 * `claimPendingTasks` for many streams in one statement (what a round's wake-ups of many trusts turn
 * into under load); returns each request's tasks, in request order. Requests must name distinct
 * (stream, kind) pairs.
 */
export async function claimPendingTasksFor(em: EntityManager, hubInstance: string, requests: ClaimRequest[]): Promise<ClaimedTask[][]> {
  const wanted = requests.filter((r) => r.limit > 0);
  const byRequest = new Map<string, ClaimedTask[]>(requests.map((r) => [`${r.streamId}/${r.kind}`, []]));
  if (wanted.length === 0) return requests.map(() => []);
  const now = new Date();
  const rows = await em.execute<ClaimRow[]>(
    `with req as (
       select * from jsonb_to_recordset(?::jsonb) as r(trust_id uuid, stream_id uuid, kind text, lim integer)
     ),
     owner as (
       select trust_id, stream_id from trust_link where (trust_id, stream_id) in (select trust_id, stream_id from req) for share
     ),
     picked as (
       select p.id, req.stream_id from req
       cross join lateral (
         select t.id from task t
         join (${FAIR_TURNS_SQL}) turn on turn.id = t.id
         where t.state = 'pending' and t.attempt < t.max_attempts and t.deadline > ?
           and exists (select 1 from owner o where o.trust_id = req.trust_id and o.stream_id = req.stream_id)
         order by turn.user_turn, turn.project_turn, t.created_at, t.id limit req.lim for update of t skip locked
       ) p
     ),
     claimed as (
       update task t set state = 'offered', attempt = t.attempt + 1, stream_id = picked.stream_id, updated_at = ?
       from picked where t.id = picked.id
       returning t.id, t.stream_id, t.attempt, t.kind, t.spec, t.deadline, t.project_id, t.trace_context, t.created_at
     ),
     attempts as (
       insert into task_attempt (task_id, attempt, stream_id, hub_instance, offered_at)
       select id, attempt, stream_id, ?, ? from claimed
     )
     select id, stream_id, attempt, kind, spec, deadline, project_id, trace_context, created_at from claimed order by created_at`,
    [JSON.stringify(wanted.map((r) => ({ trust_id: r.trustId, stream_id: r.streamId, kind: r.kind, lim: r.limit }))), now, now, hubInstance, now],
  );
  for (const r of rows) {
    byRequest.get(`${r.stream_id}/${r.kind}`)?.push({
      id: r.id,
      attempt: r.attempt,
      kind: r.kind,
      spec: r.spec,
      deadline: new Date(r.deadline),
      projectId: r.project_id,
      traceContext: r.trace_context ?? {},
      createdAt: new Date(r.created_at),
    });
  }
  return requests.map((r) => byRequest.get(`${r.streamId}/${r.kind}`)!);
}

export interface InFlightRef {
  taskId: string;
  attempt: number;
}

export interface StreamTakeover {
  /** Tasks the gateway still holds and that stay open: they continue on the new stream, not run again. */
  adopted: { id: string; kind: string }[];
  /** Tasks the gateway holds that ended meanwhile (or are unknown): the gateway is told to stop them. */
  stop: InFlightRef[];
}

/**
 * Moves a trust's open attempts onto a newly opened stream. Called in the transaction that made the
 * stream the owner of the trust's link. Attempts the gateway reports holding are adopted; the others
 * were lost with the old stream and go back to pending; pending tasks with no attempts left fail.
 */
export async function takeOverTrustTasks(
  tx: EntityManager,
  t: { trustId: string; streamId: string; inFlight: InFlightRef[]; lostReason: string },
): Promise<StreamTakeover> {
  const now = new Date();
  const heldIds = t.inFlight.map((r) => r.taskId).filter(isUuid);
  const adoptedRows = heldIds.length
    ? await tx.execute<{ id: string; kind: string; attempt: number }[]>(
        `update task set state = 'running', stream_id = ?, updated_at = ?
         where id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) and trust_id = ? and state in ('pending', 'offered', 'running') and attempt > 0
         returning id, kind, attempt`,
        [t.streamId, now, JSON.stringify(heldIds), t.trustId],
      )
    : [];
  if (adoptedRows.length) {
    await tx.execute(
      `update task_attempt a set stream_id = ?, outcome = null, ended_at = null, detail = null
       from jsonb_to_recordset(?::jsonb) as held(task_id uuid, attempt int)
       where a.task_id = held.task_id and a.attempt = held.attempt`,
      [t.streamId, JSON.stringify(adoptedRows.map((r) => ({ task_id: r.id, attempt: r.attempt })))],
    );
  }
  const adoptedIds = new Set(adoptedRows.map((r) => r.id));
  const stop = t.inFlight.filter((r) => !adoptedIds.has(r.taskId));
  await returnAttemptsToPending(tx, { trustId: t.trustId, exceptStreamId: t.streamId, reason: t.lostReason });
  await tx.execute(
    `with exhausted as (
       update task set state = 'failed', ended_at = ?, updated_at = ?, stream_id = null,
         end_reason = 'no attempts left: the last of ' || max_attempts || ' attempts was lost when the link dropped',
         error = jsonb_build_object('code', 'TASK_ERROR_CODE_UNAVAILABLE', 'message', 'no attempts left: the last attempt was lost when the link dropped')
       where trust_id = ? and state = 'pending' and attempt >= max_attempts
       returning id, trust_id, kind
     )
     select ${taskEndedNoticeSql("exhausted", "failed")} from exhausted`,
    [now, now, t.trustId],
  );
  return { adopted: adoptedRows.map((r) => ({ id: r.id, kind: r.kind })), stop };
}

/**
 * Sends a trust's offered and running attempts back to pending (they were lost with their stream):
 * those of one stream (`streamId`), or all but the new owner's (`exceptStreamId`). Returns how many.
 */
export async function returnAttemptsToPending(
  tx: EntityManager,
  r: { trustId: string; reason: string } & ({ streamId: string; exceptStreamId?: undefined } | { exceptStreamId: string; streamId?: undefined }),
): Promise<number> {
  const now = new Date();
  const byStream = r.streamId !== undefined;
  const rows = await tx.execute<{ id: string }[]>(
    `with lost as (
       update task set state = 'pending', stream_id = null, updated_at = ?
       where trust_id = ? and state in ('offered', 'running') and ${byStream ? "stream_id = ?" : "stream_id is distinct from ?"}
       returning id, attempt
     ),
     attempts as (
       update task_attempt a set outcome = 'lost', ended_at = ?, detail = ?
       from lost where a.task_id = lost.id and a.attempt = lost.attempt and a.outcome is null
     )
     select id from lost`,
    [now, r.trustId, byStream ? r.streamId : r.exceptStreamId, now, r.reason],
  );
  return rows.length;
}
