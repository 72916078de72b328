import type { JsonValue } from "@bufbuild/protobuf";
import type { EntityManager } from "../db/database.js";
import { notify } from "../db/notifier.js";
import { TASK_READY_CHANNEL } from "../tasks/channels.js";
import { returnAttemptsToPending, takeOverTrustTasks, type InFlightRef, type StreamTakeover } from "../tasks/claims.js";
import { loseAttemptsOfStreams } from "../tasks/lost-attempts.js";
import { encodeLinkRef, LINK_OPENED_CHANNEL, LINK_RELEASED_CHANNEL } from "./channels.js";

/**
 * Which stream owns each trust's link, kept in `trust_link`. Every claim of a task checks ownership in
 * the same statement (FOR SHARE on the owner row, see claimPendingTasks), so a stream that was
 * replaced, on this replica or another, can never start an attempt.
 */

export interface OpenedStream {
  trustId: string;
  /** The hash of the key the stream authenticated with; the trust must still have it when the stream opens. */
  keyHash: string;
  streamId: string;
  hubInstance: string;
  gatewayVersion: string;
  /** The gateway process's own name for itself, when it gave one. */
  gateway?: string;
  capacity: Record<string, number>;
  inFlight: InFlightRef[];
  /**
   * Set when the stream's gateway named itself: then a link held on another replica by a trust heard
   * from since this time is kept, and this stream refused (GatewayAlreadyLinkedError).
   */
  keepLinksHeardSince?: Date;
}

/**
 * The trust's key was rotated or revoked, or the trust disabled, between authenticating a stream and
 * opening it. `disabled` tells which, for the error the gateway gets.
 */
export class LinkNoLongerAllowedError extends Error {
  override readonly name = "LinkNoLongerAllowedError";
  constructor(readonly disabled: boolean) {
    super(disabled ? "the trust was disabled while its stream was opening" : "the trust's key changed while its stream was opening");
  }
}

/**
 * Another gateway process of the trust holds a live link: the hub keeps the established gateway
 * rather than let two of them replace each other's stream (and run the trust's tasks twice) forever.
 */
export class GatewayAlreadyLinkedError extends Error {
  override readonly name = "GatewayAlreadyLinkedError";
  constructor(
    readonly trustCode: string,
    readonly established: { gateway: string | undefined; hubInstance: string; since: Date },
  ) {
    super(
      `trust "${trustCode}" already has a live gateway linked (${established.gateway ?? "unnamed"}, on hub replica ${established.hubInstance}) since ${established.since.toISOString()}; ` +
        "stop it first: this gateway keeps retrying and takes over once that one is gone",
    );
  }
}

/**
 * Makes a stream the owner of its trust's link and moves the trust's open attempts onto it. The trust
 * row is read FOR SHARE first: a key rotation or disable either committed before (and the stream is
 * refused here) or waits for this transaction and then cuts the registered stream by its notice.
 */
export async function openStream(em: EntityManager, s: OpenedStream): Promise<StreamTakeover> {
  return await em.transactional(async (tx) => {
    const [trust] = await tx.execute<{ key_hash: string; disabled_at: Date | string | null }[]>("select key_hash, disabled_at from trust where id = ? for share", [s.trustId]);
    if (!trust || trust.key_hash !== s.keyHash) throw new LinkNoLongerAllowedError(false);
    if (trust.disabled_at !== null) throw new LinkNoLongerAllowedError(true);
    if (s.keepLinksHeardSince) await refuseIfLinkedElsewhere(tx, s.trustId, s.hubInstance, s.keepLinksHeardSince);
    await tx.execute(
      `insert into trust_link (trust_id, stream_id, hub_instance, connected_at, gateway_version, gateway, capacity)
       values (?, ?, ?, ?, ?, ?, ?::jsonb)
       on conflict (trust_id) do update set stream_id = excluded.stream_id, hub_instance = excluded.hub_instance,
         connected_at = excluded.connected_at, gateway_version = excluded.gateway_version, gateway = excluded.gateway,
         capacity = excluded.capacity, refused_attempts = 0, last_refused_gateway = null, last_refused_at = null`,
      [s.trustId, s.streamId, s.hubInstance, new Date(), s.gatewayVersion, s.gateway ?? "", JSON.stringify(s.capacity)],
    );
    await notify(tx, LINK_OPENED_CHANNEL, encodeLinkRef(s.trustId, s.streamId));
    return await takeOverTrustTasks(tx, {
      trustId: s.trustId,
      streamId: s.streamId,
      inFlight: s.inFlight,
      lostReason: "the link dropped before the task finished; the gateway did not report holding it",
    });
  });
}

/** A live link on another replica (the trust was heard from recently) wins over a new gateway's stream. */
async function refuseIfLinkedElsewhere(tx: EntityManager, trustId: string, hubInstance: string, heardSince: Date): Promise<void> {
  const [live] = await tx.execute<{ code: string; hub_instance: string; connected_at: Date | string }[]>(
    `select t.code, l.hub_instance, l.connected_at from trust_link l join trust t on t.id = l.trust_id
     where l.trust_id = ? and l.hub_instance <> ? and t.last_seen_at >= ?`,
    [trustId, hubInstance, heardSince],
  );
  if (live) throw new GatewayAlreadyLinkedError(live.code, { gateway: undefined, hubInstance: live.hub_instance, since: new Date(live.connected_at) });
}

/** Counts a gateway process refused because another one of the trust holds its live link. */
export async function recordRefusedGateway(em: EntityManager, trustId: string, gateway: string): Promise<void> {
  await em.execute(
    "update trust_link set refused_attempts = refused_attempts + 1, last_refused_gateway = ?, last_refused_at = now() where trust_id = ?",
    [gateway, trustId],
  );
}

/**
 * Ends a stream's ownership (if it still has it) and sends its unfinished attempts back to pending,
 * waking whichever replica holds the trust's next stream. Returns how many attempts were returned.
 */
export async function closeStream(em: EntityManager, c: { trustId: string; streamId: string; reason: string }): Promise<number> {
  return await em.transactional(async (tx) => {
    await tx.execute("delete from trust_link where trust_id = ? and stream_id = ?", [c.trustId, c.streamId]);
    const returned = await returnAttemptsToPending(tx, { trustId: c.trustId, streamId: c.streamId, reason: c.reason });
    if (returned > 0) await notify(tx, TASK_READY_CHANNEL, c.trustId);
    return returned;
  });
}

/** The stream that owns a trust's link now, if any. */
export async function currentStreamOf(em: EntityManager, trustId: string): Promise<string | undefined> {
  const rows = await em.execute<{ stream_id: string }[]>("select stream_id from trust_link where trust_id = ?", [trustId]);
  return rows[0]?.stream_id;
}

/**
 * Releases links whose trust has not been seen since `seenBefore`: their replica died without closing
 * them (a crash). Their attempts go back to pending, so the trust's tasks do not look "running" on a
 * stream that no longer exists. Each release is announced, so a replica that was only stalled closes
 * the stream it still holds instead of keeping a link that can no longer claim work. Returns the
 * trusts released.
 */
export async function releaseStaleLinks(em: EntityManager, seenBefore: Date): Promise<string[]> {
  const now = new Date();
  return await em.transactional(async (tx) => {
    const released = await releaseStaleLinkRows(tx, seenBefore, now);
    for (const r of released) await notify(tx, LINK_RELEASED_CHANNEL, encodeLinkRef(r.trust_id, r.stream_id));
    return released.map((r) => r.trust_id);
  });
}

/** Deletes the owner rows of links whose trust went unheard, and loses their streams' attempts. */
async function releaseStaleLinkRows(em: EntityManager, seenBefore: Date, now: Date): Promise<{ trust_id: string; stream_id: string }[]> {
  const gone = await em.execute<{ trust_id: string; stream_id: string }[]>(
    `with stale as (
       select l.trust_id, l.stream_id from trust_link l join trust t on t.id = l.trust_id
       where l.connected_at < ? and coalesce(t.last_seen_at, l.connected_at) < ?
       for update of l skip locked
     )
     delete from trust_link l using stale where l.trust_id = stale.trust_id and l.stream_id = stale.stream_id
     returning l.trust_id, l.stream_id`,
    [seenBefore, seenBefore],
  );
  await loseAttemptsOfStreams(
    em,
    gone.map((g) => g.stream_id),
    "the hub replica holding the link stopped answering",
    now,
  );
  return gone;
}

/** Writes when trusts were last heard from, and their newest health snapshot, in one statement. */
export async function recordTrustsSeen(em: EntityManager, seen: { trustId: string; at: Date; health: JsonValue | null }[]): Promise<void> {
  if (seen.length === 0) return;
  await em.execute(
    `update trust t set last_seen_at = greatest(t.last_seen_at, v.seen), health = coalesce(v.health, t.health)
     from jsonb_to_recordset(?::jsonb) as v(id uuid, seen timestamptz, health jsonb) where t.id = v.id`,
    [JSON.stringify(seen.map((s) => ({ id: s.trustId, seen: s.at.toISOString(), health: s.health })))],
  );
}
