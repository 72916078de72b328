import type { ImagingImportOutput, TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { randomUUID } from "node:crypto";
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { HealthSnapshotSchema, type HealthSnapshot } from "@flip/gen/flip/common/v1/common_pb.js";
import { ConnectResponseSchema, type ConnectRequest, type ConnectResponse, type TaskResult } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName } from "@flip/shared/link/task-kinds.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { extractTraceContext, injectTraceContext, tracer, withSpan } from "@flip/shared/telemetry/trace-context.js";
import type { Database } from "../db/database.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import type { ClaimedTask, ClaimRequest, StreamTakeover } from "../tasks/claims.js";
import type { TaskEndedNotice } from "../tasks/channels.js";
import { specFromJson } from "../tasks/task-json.js";
import type { SuccessBatcher } from "../tasks/success-batcher.js";
import { recordProgress, recordResult, type StreamAcks } from "../tasks/task-outcomes.js";
import type { AuthenticatedTrust } from "../trusts/trust-key-auth.js";
import type { LinkHello } from "./hello.js";

export interface SessionDeps {
  db: Database;
  /** Claims pending tasks for a stream; shared by every session of this replica, so claims made at once go in one statement. */
  claim(request: ClaimRequest): Promise<ClaimedTask[]>;
  /** Records a stream's acks; shared likewise, so acks of many streams go in one statement. */
  recordAcks(acks: StreamAcks): Promise<void>;
  /** Group commit of successes, shared by every session of this replica. */
  successes: SuccessBatcher;
  log: Logger;
  hubInstance: string;
  heartbeatIntervalMs: number;
  metrics: Pick<HubMetrics, "taskOffered">;
  /** Stores a training task's live report; none without a training module. */
  trainingReports?: (trustId: string, taskId: string, report: TrainingReport) => Promise<void>;
  /** Stores an imaging import's live counts; none without an imaging module. */
  imagingProgress?: (trustId: string, taskId: string, counts: ImagingImportOutput) => Promise<void>;
}

type Outbound = MessageInitShape<typeof ConnectResponseSchema>["message"];

/**
 * Where a session's messages to the gateway go: Connect's response stream (an AsyncQueue) or a direct
 * HTTP/2 stream. `push` returns false once the stream has ended.
 */
export interface LinkOutbound {
  push(message: ConnectResponse): boolean;
  end(): void;
  fail(error: ConnectError): void;
}

/**
 * Acks are written this long after they arrive, in one statement per stream. A quick task's result
 * usually arrives first and makes the write unnecessary (its final state says it ran).
 */
const ACK_WRITE_DELAY_MS = 25;

/**
 * One trust's stream on this replica: it offers the trust's pending tasks up to the capacity the
 * gateway declared per kind, records what the gateway reports, and tells it to stop tasks that
 * ended at the hub. Timers live in the registry (one for all sessions), not here.
 */
export class LinkSession {
  readonly streamId = randomUUID();
  readonly connectedAt = new Date();
  /** Streams of another gateway process of this trust refused while this one held the link. */
  refusedAttempts = 0;
  readonly log: Logger;
  lastHeardAt = Date.now();
  /** When lastHeardAt was last written to the trust row. */
  lastSeenWrittenAt = 0;
  /** Which tick of the shared heartbeat timer serves this session. */
  slice = 0;
  /** The newest health snapshot not yet written (only when it changed: heartbeats mostly repeat it). */
  unwrittenHealth: HealthSnapshot | undefined;
  private lastHealth: HealthSnapshot | undefined;
  closed = false;
  /** Why the hub closed the stream, when it did (a newer stream, silence, a revoked key...). */
  closeReason: string | undefined;
  /** Settles when the session closes, so a reader waiting on the gateway can stop waiting. */
  readonly ended: Promise<void>;
  private markEnded!: () => void;
  /** Task id → kind name, for attempts offered or running on this stream. */
  private readonly held = new Map<string, string>();
  private readonly heldPerKind = new Map<string, number>();
  private pumping = false;
  private pumpAgain = false;
  /** Wake-ups so far, and per kind the wake count at which a claim last found the queue empty. */
  private wakes = 1;
  private readonly drainedAt = new Map<string, number>();
  private readonly unwrittenAcks = new Set<string>();
  private ackTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly trust: AuthenticatedTrust,
    readonly hello: LinkHello,
    /** The stream's own trace context, carried by messages that belong to no task (welcome, heartbeats). */
    private readonly traceCarrier: Record<string, string>,
    private readonly outbound: LinkOutbound,
    private readonly deps: SessionDeps,
  ) {
    this.log = deps.log.child({ trustId: trust.id, trust: trust.code, streamId: this.streamId });
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    this.unwrittenHealth = hello.health;
    this.lastHealth = hello.health;
  }

  private send(message: Outbound, traceContext = this.traceCarrier): void {
    this.outbound.push(create(ConnectResponseSchema, { message, traceContext }));
  }

  /** Opens the conversation: Welcome, then stop orders for tasks the gateway holds that ended meanwhile. */
  welcome(takeover: StreamTakeover): void {
    this.send({
      case: "welcome",
      value: {
        trustId: this.trust.id,
        trustCode: this.trust.code,
        trustName: this.trust.name,
        heartbeatInterval: durationFromMs(this.deps.heartbeatIntervalMs),
        hubInstance: this.deps.hubInstance,
      },
    });
    for (const t of takeover.adopted) this.hold(t.id, t.kind);
    for (const ref of takeover.stop) {
      this.send({ case: "cancel", value: { taskId: ref.taskId, reason: "the task already ended at the hub" } });
    }
    if (takeover.adopted.length || takeover.stop.length) {
      this.log.info({ adopted: takeover.adopted.length, stopped: takeover.stop.length }, "link resumed tasks the gateway held");
    }
  }

  heartbeat(): void {
    this.send({ case: "heartbeat", value: { sentAt: timestampNow() } });
  }

  /** Ends the stream: with `error` the gateway sees that status, without it a clean end. */
  close(error?: ConnectError): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.ackTimer);
    if (error) this.closeReason = error.rawMessage;
    if (error) this.outbound.fail(error);
    else this.outbound.end();
    this.markEnded();
  }

  /** Handles one message from the gateway, in arrival order. */
  async handle(req: ConnectRequest): Promise<void> {
    this.lastHeardAt = Date.now();
    const m = req.message;
    switch (m.case) {
      case "heartbeat":
        if (m.value.health && !(this.lastHealth && equals(HealthSnapshotSchema, this.lastHealth, m.value.health))) {
          this.unwrittenHealth = m.value.health;
          this.lastHealth = m.value.health;
        }
        return;
      case "ack":
        this.unwrittenAcks.add(m.value.taskId);
        this.ackTimer ??= setTimeout(() => void this.writeAcks(), ACK_WRITE_DELAY_MS);
        return;
      case "progress":
        await recordProgress(this.deps.db.em(), this.streamId, m.value.taskId, m.value.fraction, m.value.message);
        // Stored only for this trust's own training task (the report names no job: the task does).
        if (m.value.training) await this.deps.trainingReports?.(this.trust.id, m.value.taskId, m.value.training);
        // Likewise only for this trust's current import of a project (the counts name no project: the task does).
        if (m.value.imaging) await this.deps.imagingProgress?.(this.trust.id, m.value.taskId, m.value.imaging);
        return;
      case "result":
        await withSpan("link.result", extractTraceContext(req.traceContext), { attributes: { "flip.task_id": m.value.taskId, "flip.trust": this.trust.code } }, () => this.onResult(m.value));
        return;
      case "hello":
        throw new ConnectError("hello may only be sent once, as the first message", Code.InvalidArgument);
      case undefined:
        throw new ConnectError("empty link message: set one of ack, progress, result, heartbeat", Code.InvalidArgument);
    }
  }

  private async onResult(result: TaskResult): Promise<void> {
    const outcome = result.outcome;
    if (outcome.case === undefined) throw new ConnectError("result.outcome: set output or error", Code.InvalidArgument);
    this.unwrittenAcks.delete(result.taskId);
    const r = await recordResult(this.deps.db.em(), this.trust.id, result.taskId, outcome, this.deps.successes);
    this.release(result.taskId);
    this.send({ case: "resultAck", value: { taskId: result.taskId, attempt: result.attempt, recorded: r.recorded } }, injectTraceContext());
    if (r.recorded) this.log.info({ taskId: result.taskId, state: r.state }, "task result recorded");
    else this.log.info({ taskId: result.taskId, why: r.why }, "task result ignored");
    this.pump();
  }

  private async writeAcks(): Promise<void> {
    this.ackTimer = undefined;
    const ids = [...this.unwrittenAcks];
    this.unwrittenAcks.clear();
    if (this.closed || ids.length === 0) return;
    try {
      await this.deps.recordAcks({ streamId: this.streamId, taskIds: ids });
    } catch (err) {
      // Only the "running" display is late; the result still ends the task.
      this.log.warn({ err, tasks: ids.length }, "could not record task acknowledgements");
    }
  }

  /**
   * There may be new pending tasks (a NOTIFY, a reconnect of the listener, a new stream): look again.
   * Without a wake, a kind whose last claim came back short is not queried again (no wasted claim
   * after every result).
   */
  wake(): void {
    this.wakes++;
    this.pump();
  }

  /** Offers pending tasks while the gateway has capacity. Safe to call often: runs coalesce. */
  pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pumpLoop().finally(() => {
      this.pumping = false;
      // A wake-up can arrive after the loop's last check but before this callback (two notices in one
      // packet are emitted in the same tick): it only set pumpAgain, so run again for it.
      if (this.pumpAgain) this.pump();
    });
  }

  private async pumpLoop(): Promise<void> {
    do {
      this.pumpAgain = false;
      for (const [kind, max] of this.hello.capacity) {
        const free = max - (this.heldPerKind.get(kind) ?? 0);
        if (free <= 0 || this.closed || this.drainedAt.get(kind) === this.wakes) continue;
        const wakes = this.wakes;
        let claimed: ClaimedTask[];
        try {
          claimed = await this.deps.claim({ trustId: this.trust.id, streamId: this.streamId, kind, limit: free });
        } catch (err) {
          this.log.error({ err, kind }, "claiming tasks failed; will retry on the next wake-up");
          return;
        }
        // Fewer than asked: nothing else is pending, unless a wake arrived since the claim began.
        if (claimed.length < free) this.drainedAt.set(kind, wakes);
        for (const t of claimed) this.offer(t);
      }
    } while (this.pumpAgain && !this.closed);
  }

  private offer(t: ClaimedTask): void {
    this.hold(t.id, t.kind);
    // The offer continues the trace of the RPC that created the task; the gateway's run is its child.
    const parent = extractTraceContext(t.traceContext, ROOT_CONTEXT);
    const span = tracer.startSpan("link.offer", { attributes: { "flip.task_id": t.id, "flip.task_kind": t.kind, "flip.attempt": t.attempt, "flip.trust": this.trust.code } }, parent);
    const traceContext = injectTraceContext(trace.setSpan(parent, span));
    span.end();
    this.send(
      {
        case: "offer",
        value: {
          taskId: t.id,
          attempt: t.attempt,
          kind: taskKindFromName(t.kind) ?? TaskKind.UNSPECIFIED,
          spec: specFromJson(t.spec),
          deadline: timestampFromDate(t.deadline),
          projectId: t.projectId ?? "",
        },
      },
      traceContext,
    );
    this.deps.metrics.taskOffered(t.kind, t.createdAt);
    this.log.debug({ taskId: t.id, attempt: t.attempt, kind: t.kind }, "task offered");
  }

  /** A task ended somewhere (this replica or another): free its slot, and stop it if the gateway still runs it. */
  taskEnded(n: TaskEndedNotice): void {
    if (!this.held.has(n.taskId)) return;
    this.release(n.taskId);
    if (n.state !== "succeeded") {
      this.send({ case: "cancel", value: { taskId: n.taskId, reason: `the task was ${n.state} at the hub` } });
      this.log.info({ taskId: n.taskId, state: n.state }, "told the gateway to stop a task");
    }
    this.pump();
  }

  private hold(taskId: string, kind: string): void {
    if (this.held.has(taskId)) return;
    this.held.set(taskId, kind);
    this.heldPerKind.set(kind, (this.heldPerKind.get(kind) ?? 0) + 1);
  }

  private release(taskId: string): void {
    const kind = this.held.get(taskId);
    if (kind === undefined) return;
    this.held.delete(taskId);
    this.heldPerKind.set(kind, (this.heldPerKind.get(kind) ?? 1) - 1);
  }

  /** Attempts offered or running on this stream, per kind (for tests and operators). */
  heldCount(kind?: string): number {
    return kind === undefined ? this.held.size : (this.heldPerKind.get(kind) ?? 0);
  }
}
