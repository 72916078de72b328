import type { ImagingImportOutput, TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import type { HubConfig } from "../config.js";
import type { Database } from "../db/database.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import { onTaskEndedNotice, TASK_READY_CHANNEL } from "../tasks/channels.js";
import { GroupCommit } from "../db/group-commit.js";
import { claimPendingTasksFor, type ClaimRequest } from "../tasks/claims.js";
import { recordAcks, type StreamAcks } from "../tasks/task-outcomes.js";
import { SuccessBatcher } from "../tasks/success-batcher.js";
import { Trust } from "../trusts/entities.js";
import { healthToJson } from "../trusts/health-json.js";
import { TRUST_CHANGED_CHANNEL } from "../trusts/registry.js";
import type { AuthenticatedTrust } from "../trusts/trust-key-auth.js";
import { decodeLinkRef, LINK_OPENED_CHANNEL, LINK_RELEASED_CHANNEL } from "./channels.js";
import type { LinkHello } from "./hello.js";
import { LinkSession, type LinkOutbound, type SessionDeps } from "./link-session.js";
import { closeStream, currentStreamOf, GatewayAlreadyLinkedError, openStream, recordTrustsSeen, releaseStaleLinks } from "./stream-ownership.js";

/** Heartbeat ticks per heartbeat interval; each serves the sessions of one slice. */
const TICK_SLICES = 10;

export interface LinkRegistryDeps {
  db: Database;
  log: Logger;
  config: Pick<HubConfig, "instanceId" | "heartbeatIntervalMs" | "offlineAfterMs">;
  metrics: Pick<HubMetrics, "taskOffered">;
  /** Stores a training task's live report (TaskProgress.training); reports are dropped without it. */
  trainingReports?: (trustId: string, taskId: string, report: TrainingReport) => Promise<void>;
  /** Stores an imaging import's live counts (TaskProgress.imaging); counts are dropped without it. */
  imagingProgress?: (trustId: string, taskId: string, counts: ImagingImportOutput) => Promise<void>;
}

/**
 * The trust links held by this replica. It routes Postgres notices to the session they concern (a new
 * task wakes only the replica holding its trust's stream), and runs one shared timer for every
 * session: heartbeats out, silence detection in, and a single batched write of "last seen" times.
 */
export class LinkRegistry {
  private readonly byTrust = new Map<string, LinkSession>();
  private readonly unsubscribers: (() => void)[] = [];
  private readonly closing = new Set<Promise<unknown>>();
  private readonly unwrittenSeen = new Set<LinkSession>();
  private seenWrite: Promise<void> | undefined;
  private tickCount = 0;
  private opened = 0;
  private readonly tick: PeriodicJob;
  /** What every session needs, shared (a hub holds thousands of sessions). */
  private readonly sessionDeps: SessionDeps;
  private readonly staleLinks: PeriodicJob;

  constructor(private readonly deps: LinkRegistryDeps) {
    const claims = new GroupCommit((batch: ClaimRequest[]) => claimPendingTasksFor(deps.db.em(), deps.config.instanceId, batch));
    const acks = new GroupCommit(async (batch: StreamAcks[]) => {
      await recordAcks(deps.db.em(), batch);
      return batch.map(() => undefined);
    });
    this.sessionDeps = {
      db: deps.db,
      claim: (request) => claims.submit(request),
      recordAcks: (a) => acks.submit(a),
      successes: new SuccessBatcher(deps.db),
      log: deps.log,
      hubInstance: deps.config.instanceId,
      heartbeatIntervalMs: deps.config.heartbeatIntervalMs,
      metrics: deps.metrics,
      trainingReports: deps.trainingReports,
      imagingProgress: deps.imagingProgress,
    };
    // One timer for all sessions, each tick serving one slice of them: heartbeats and last-seen writes
    // are spread over the interval instead of a burst for every trust at once.
    this.tick = new PeriodicJob("link-heartbeat", Math.max(20, Math.floor(deps.config.heartbeatIntervalMs / TICK_SLICES)), () => this.onTick(), deps.log);
    this.staleLinks = new PeriodicJob(
      "stale-links",
      deps.config.offlineAfterMs,
      async () => {
        const seenBefore = new Date(Date.now() - deps.config.offlineAfterMs - 2 * deps.config.heartbeatIntervalMs);
        const released = await releaseStaleLinks(deps.db.em(), seenBefore);
        if (released.length) deps.log.warn({ trusts: released.length }, "released links of trusts no replica has heard from");
      },
      deps.log,
    );
  }

  async start(): Promise<void> {
    const { notifier } = this.deps.db;
    this.unsubscribers.push(
      await notifier.subscribe(TASK_READY_CHANNEL, (trustId) => this.byTrust.get(trustId)?.wake()),
      await onTaskEndedNotice(notifier, (n) => this.byTrust.get(n.trustId)?.taskEnded(n)),
      await notifier.subscribe(LINK_OPENED_CHANNEL, (payload) => void this.onLinkOpened(payload)),
      await notifier.subscribe(LINK_RELEASED_CHANNEL, (payload) => this.onLinkReleased(payload)),
      await notifier.subscribe(TRUST_CHANGED_CHANNEL, (trustId) => void this.onTrustChanged(trustId)),
      // Notices sent while the listener was reconnecting are lost: look at the tables again.
      notifier.onReconnect(() => {
        for (const s of this.byTrust.values()) s.wake();
      }),
    );
    this.tick.start();
    this.staleLinks.start();
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribers.splice(0)) u();
    await this.tick.stop();
    await this.staleLinks.stop();
    await this.seenWrite;
    await Promise.allSettled([...this.closing]);
  }

  get size(): number {
    return this.byTrust.size;
  }

  /** Makes a new stream the owner of its trust's link and returns its session, already welcomed. */
  async open(trust: AuthenticatedTrust, hello: LinkHello, traceCarrier: Record<string, string>, outbound: LinkOutbound): Promise<LinkSession> {
    const { db, config } = this.deps;
    this.refuseSecondGateway(trust, hello);
    const session = new LinkSession(trust, hello, traceCarrier, outbound, this.sessionDeps);
    session.slice = this.opened++ % TICK_SLICES;
    const takeover = await openStream(db.em(), {
      keepLinksHeardSince: hello.gateway ? new Date(Date.now() - config.offlineAfterMs) : undefined,
      trustId: trust.id,
      keyHash: trust.keyHash,
      streamId: session.streamId,
      hubInstance: config.instanceId,
      gatewayVersion: hello.gatewayVersion,
      gateway: hello.gateway,
      capacity: Object.fromEntries(hello.capacity),
      inFlight: hello.inFlight,
    });
    // Welcome first: once registered, the shared timer may send this session heartbeats.
    session.welcome(takeover);
    const previous = this.byTrust.get(trust.id);
    this.byTrust.set(trust.id, session);
    previous?.close(new ConnectError("a newer stream of this trust replaced this one", Code.Aborted));
    await this.writeSeen([session]);
    session.log.info({ gateway: hello.gateway, gatewayVersion: hello.gatewayVersion, capacity: Object.fromEntries(hello.capacity), inFlight: hello.inFlight.length }, "trust linked");
    session.pump();
    return session;
  }

  /**
   * Throws GatewayAlreadyLinkedError when another named gateway process of the trust holds a live link
   * here. The same process reconnecting (its old stream not noticed dead yet) and unnamed streams
   * replace the link as before; a link silent for offlineAfterMs is no longer live.
   */
  private refuseSecondGateway(trust: AuthenticatedTrust, hello: LinkHello): void {
    const established = this.byTrust.get(trust.id);
    if (!established || established.closed || !hello.gateway || !established.hello.gateway || established.hello.gateway === hello.gateway) return;
    if (Date.now() - established.lastHeardAt > this.deps.config.offlineAfterMs) return;
    established.refusedAttempts++;
    established.log.warn(
      { gateway: established.hello.gateway, refusedGateway: hello.gateway, refusedAttempts: established.refusedAttempts },
      "a second gateway of this trust tried to link; refused, keeping the established one (stop one of them)",
    );
    throw new GatewayAlreadyLinkedError(trust.code, { gateway: established.hello.gateway, hubInstance: this.deps.config.instanceId, since: established.connectedAt });
  }

  /** Forgets a session whose stream ended and returns its unfinished attempts to pending. */
  async release(session: LinkSession, reason: string): Promise<void> {
    session.close();
    if (this.byTrust.get(session.trust.id) === session) this.byTrust.delete(session.trust.id);
    const done = (async () => {
      await this.writeSeen([session]);
      const returned = await closeStream(this.deps.db.em(), { trustId: session.trust.id, streamId: session.streamId, reason });
      session.log.info({ reason, returnedToPending: returned }, "trust link closed");
    })();
    this.closing.add(done);
    try {
      await done;
    } catch (err) {
      session.log.error({ err }, "could not release a closed link; the stale-link sweep will");
    } finally {
      this.closing.delete(done);
    }
  }

  private async onTick(): Promise<void> {
    const now = Date.now();
    const { offlineAfterMs } = this.deps.config;
    const slice = this.tickCount++ % TICK_SLICES;
    const due: LinkSession[] = [];
    for (const s of this.byTrust.values()) {
      if (s.slice !== slice) continue;
      due.push(s);
      if (now - s.lastHeardAt > offlineAfterMs) {
        s.log.warn({ silentMs: now - s.lastHeardAt }, "no heartbeat from the gateway; closing its link");
        s.close(new ConnectError(`no message from the gateway for ${Math.round((now - s.lastHeardAt) / 1000)} s`, Code.Unavailable));
      } else {
        s.heartbeat();
      }
    }
    this.writeSeenInBackground(due);
  }

  /**
   * Heartbeats must not wait for the database: a slow write would delay every heartbeat after it and
   * make gateways think the hub went silent. Writes run one at a time; sessions due meanwhile are
   * written by the next one.
   */
  private writeSeenInBackground(due: LinkSession[]): void {
    for (const s of due) this.unwrittenSeen.add(s);
    if (this.seenWrite || this.unwrittenSeen.size === 0) return;
    const batch = [...this.unwrittenSeen];
    this.unwrittenSeen.clear();
    this.seenWrite = this.writeSeen(batch)
      .catch((err: unknown) => {
        this.deps.log.warn({ err, sessions: batch.length }, "could not record when trusts were last seen; retrying with the next heartbeat");
        for (const s of batch) if (!s.closed) this.unwrittenSeen.add(s);
      })
      .finally(() => (this.seenWrite = undefined));
  }

  /** One UPDATE for every session heard from since its last write. */
  private async writeSeen(sessions: LinkSession[]): Promise<void> {
    const due = sessions.filter((s) => s.lastHeardAt > s.lastSeenWrittenAt || s.unwrittenHealth);
    if (due.length === 0) return;
    const batch = due.map((s) => ({
      session: s,
      at: s.lastHeardAt,
      health: s.unwrittenHealth ? healthToJson(s.unwrittenHealth) : null,
    }));
    for (const b of batch) b.session.unwrittenHealth = undefined;
    await recordTrustsSeen(
      this.deps.db.em(),
      batch.map((b) => ({ trustId: b.session.trust.id, at: new Date(b.at), health: b.health })),
    );
    for (const b of batch) b.session.lastSeenWrittenAt = b.at;
  }

  /** Another stream of a trust opened: close ours if the table agrees it is no longer the owner. */
  private async onLinkOpened(payload: string): Promise<void> {
    const opened = decodeLinkRef(payload);
    const local = opened && this.byTrust.get(opened.trustId);
    if (!opened || !local || local.streamId === opened.streamId) return;
    try {
      // Notices can arrive late; the owner row is the truth.
      if ((await currentStreamOf(this.deps.db.em(), opened.trustId)) === local.streamId) return;
    } catch (err) {
      local.log.warn({ err }, "could not check link ownership; the next claim will");
      return;
    }
    local.log.warn("a newer stream of this trust opened elsewhere; closing this one");
    local.close(new ConnectError("a newer stream of this trust replaced this one", Code.Aborted));
  }

  /** Our stream's link was released by the stale-link sweep (this replica stalled): close it, the gateway dials again. */
  private onLinkReleased(payload: string): void {
    const released = decodeLinkRef(payload);
    const local = released && this.byTrust.get(released.trustId);
    if (!local || local.streamId !== released.streamId) return;
    local.log.warn("this link was released after no replica recorded hearing from the trust; closing it so the gateway reconnects");
    local.close(new ConnectError("the hub released this link after it went unrecorded for too long; reconnect", Code.Unavailable));
  }

  /** A trust's key was rotated, or it was disabled: cut its open stream at once if the key no longer holds. */
  private async onTrustChanged(trustId: string): Promise<void> {
    const local = this.byTrust.get(trustId);
    if (!local) return;
    let trust: Trust | null;
    try {
      trust = await this.deps.db.em().findOne(Trust, { id: trustId });
    } catch (err) {
      local.log.error({ err }, "could not re-check a changed trust; closing its link to be safe");
      local.close(new ConnectError("the trust changed at the hub; reconnect", Code.Unavailable));
      return;
    }
    if (!trust || trust.keyHash !== local.trust.keyHash) {
      local.log.warn("the trust's key was rotated or revoked; cutting its link");
      local.close(new ConnectError("the trust API key was rotated or revoked; configure the trust's current key", Code.Unauthenticated));
    } else if (trust.disabledAt) {
      local.log.warn("the trust was disabled; cutting its link");
      local.close(new ConnectError("this trust was disabled at the hub", Code.PermissionDenied));
    }
  }
}
