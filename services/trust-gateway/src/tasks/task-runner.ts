import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { context, trace, SpanStatusCode, type Context, type Span } from "@opentelemetry/api";
import {
  ConnectRequestSchema,
  TaskErrorCode,
  TaskResultSchema,
  type TaskCancel,
  type TaskOffer,
  type ResultAck,
  type TaskResult,
} from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskOutputSchema, type ImagingImportOutput, type TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindName } from "@flip/shared/link/task-kinds.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { injectTraceContext, tracer } from "@flip/shared/telemetry/trace-context.js";
import { KindSlots } from "./kind-slots.js";
import type { ResultStore } from "./result-store.js";
import { TaskFailure, type SpecOf, type TaskCase, type TaskContext, type TaskHandler, type TaskHandlers } from "./task-handler.js";
import type { TaskLog } from "./task-log.js";

/** A message for the hub, without its trace context. */
export type LinkMessage = MessageInitShape<typeof ConnectRequestSchema>["message"];

export interface TaskRunnerDeps {
  handlers: TaskHandlers;
  /** Tasks of each kind (short name) run at once. */
  capacity: ReadonlyMap<string, number>;
  trustCode: string;
  results: ResultStore;
  taskLog: TaskLog;
  log: Logger;
  /** Sends on the current stream; returns false when there is none (the runner keeps results for later). */
  send(message: LinkMessage, traceContext: Record<string, string>): boolean;
}

/** Why a task's signal fired. */
class TaskStopped extends Error {
  override readonly name = "TaskStopped";
  constructor(
    readonly why: "cancelled" | "deadline" | "shutdown",
    message: string,
  ) {
    super(message);
  }
}

interface HeldTask {
  taskId: string;
  attempt: number;
  kind: string;
  projectId: string;
  abort: AbortController;
  span: Span;
  spanContext: Context;
  deadlineTimer: NodeJS.Timeout | undefined;
  /** The ack, until it is sent: a task that ends in the turn it was accepted reports its result instead. */
  pendingAck: NodeJS.Immediate | undefined;
  lastProgressAt: number;
  /** The latest progress sent, repeated with live training reports. */
  lastProgress: { fraction: number; message: string };
  done: Promise<void>;
}

const PROGRESS_EVERY_MS = 1_000;

/**
 * Runs the tasks the hub offers: at most the declared number per kind at once, each with its own
 * abort signal (cancel, deadline, shutdown), each inside a span that continues the offer's trace.
 * A task offered again while it runs is not run twice. Results stay in the ResultStore until the
 * hub acknowledges them, and are sent again after every reconnect.
 */
export class TaskRunner {
  private readonly held = new Map<string, HeldTask>();
  private readonly slots: KindSlots;

  constructor(private readonly deps: TaskRunnerDeps) {
    this.slots = new KindSlots((kind) => deps.capacity.get(kind) ?? 1);
  }

  /** Tasks accepted and not yet acknowledged by the hub: running, waiting for a slot, or with a result to deliver. */
  inFlight(): { taskId: string; attempt: number }[] {
    const refs = new Map<string, number>();
    for (const r of this.deps.results.all()) refs.set(r.taskId, r.attempt);
    for (const t of this.held.values()) refs.set(t.taskId, t.attempt);
    return [...refs].map(([taskId, attempt]) => ({ taskId, attempt }));
  }

  get runningCount(): number {
    return this.held.size;
  }

  /** After a Welcome: deliver every result the hub has not acknowledged (their task spans are gone; they carry the stream's). */
  resendResults(traceContext: Record<string, string> = {}): void {
    for (const r of this.deps.results.all()) this.deps.send({ case: "result", value: r }, traceContext);
  }

  offer(offer: TaskOffer, parent: Context): void {
    const existing = this.held.get(offer.taskId);
    if (existing) {
      // Offered again (e.g. after a reconnect the hub did not know we held it): keep the one run.
      existing.attempt = offer.attempt;
      this.deps.send({ case: "ack", value: { taskId: offer.taskId, attempt: offer.attempt } }, injectTraceContext(existing.spanContext));
      return;
    }
    const stored = this.deps.results.get(offer.taskId);
    if (stored) {
      this.deps.send({ case: "result", value: stored }, injectTraceContext(parent));
      return;
    }
    const kind = taskKindName(offer.kind);
    const attributes = { "flip.task_id": offer.taskId, "flip.task_kind": kind, "flip.attempt": offer.attempt, "flip.trust": this.deps.trustCode, ...(offer.projectId ? { "flip.project_id": offer.projectId } : {}) };
    const span = tracer.startSpan("gateway.task", { attributes }, parent);
    const task: HeldTask = {
      taskId: offer.taskId,
      attempt: offer.attempt,
      kind,
      projectId: offer.projectId,
      abort: new AbortController(),
      span,
      spanContext: trace.setSpan(parent, span),
      deadlineTimer: undefined,
      pendingAck: undefined,
      lastProgressAt: 0,
      lastProgress: { fraction: -1, message: "" },
      done: Promise.resolve(),
    };
    this.held.set(task.taskId, task);
    // The ack tells the hub the task is running. One that already ended (a quick task finishes within this
    // turn) says so with its result, which is all the hub needs: one message instead of two.
    task.pendingAck = setImmediate(() => {
      task.pendingAck = undefined;
      this.deps.send({ case: "ack", value: { taskId: task.taskId, attempt: task.attempt } }, injectTraceContext(task.spanContext));
    });
    this.deps.taskLog.append({ event: "accepted", ...this.logRef(task) });
    if (offer.deadline) {
      const ms = timestampDate(offer.deadline).getTime() - Date.now();
      task.deadlineTimer = setTimeout(() => task.abort.abort(new TaskStopped("deadline", "the task passed its deadline at the trust")), Math.max(0, ms));
      task.deadlineTimer.unref();
    }
    // Everything the task does, and every line it logs, belongs to its span.
    task.done = context.with(task.spanContext, () => this.run(task, offer));
  }

  cancel(c: TaskCancel): void {
    const task = this.held.get(c.taskId);
    if (!task) return;
    this.deps.log.info({ taskId: c.taskId, reason: c.reason }, "hub cancelled a task; stopping it");
    task.abort.abort(new TaskStopped("cancelled", c.reason || "cancelled at the hub"));
  }

  /** The hub stored (or deliberately ignored) a result: forget it. */
  resultAcknowledged(ref: ResultAck): void {
    this.deps.results.remove(ref.taskId);
    if (!ref.recorded) this.deps.log.info({ taskId: ref.taskId }, "hub ignored a result (the task had already ended there)");
  }

  /** Stops every task (they will be offered again after a restart) and waits for them to settle. */
  async close(graceMs = 5_000): Promise<void> {
    const all = [...this.held.values()];
    for (const t of all) t.abort.abort(new TaskStopped("shutdown", "the gateway is stopping"));
    await Promise.race([Promise.allSettled(all.map((t) => t.done)), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  private logRef(t: HeldTask) {
    const traceId = t.span.spanContext().traceId;
    return { taskId: t.taskId, attempt: t.attempt, kind: t.kind, projectId: t.projectId || undefined, traceId: /^0+$/.test(traceId) ? undefined : traceId };
  }

  private async run(task: HeldTask, offer: TaskOffer): Promise<void> {
    const spec = offer.spec?.kind;
    // The handler map is keyed by case; each entry takes its own case's spec, so the union cast is sound.
    const handler = spec?.case ? (this.deps.handlers[spec.case] as TaskHandler<TaskCase> | undefined) : undefined;
    if (!spec?.case || !handler) {
      this.finish(task, Date.now(), {
        case: "error",
        value: { code: TaskErrorCode.UNSUPPORTED, message: `this gateway does not run ${task.kind} tasks`, retryable: false },
      });
      return;
    }
    let release: (() => void) | undefined;
    try {
      release = await this.slots.acquire(task.kind, task.abort.signal);
    } catch (e) {
      this.stopped(task, e, Date.now());
      return;
    }
    const started = Date.now();
    this.deps.taskLog.append({ event: "started", ...this.logRef(task) });
    try {
      const ctx: TaskContext = {
        taskId: task.taskId,
        attempt: task.attempt,
        projectId: task.projectId,
        deadline: offer.deadline ? timestampDate(offer.deadline) : new Date(8.64e15),
        trustCode: this.deps.trustCode,
        signal: task.abort.signal,
        progress: (fraction, message = "") => this.progress(task, fraction, message),
        report: (training) => this.report(task, training),
        reportImaging: (imaging) => this.reportImaging(task, imaging),
        log: this.deps.log.child({ taskId: task.taskId, kind: task.kind }),
      };
      const output = await handler(spec.value as SpecOf<TaskCase>, ctx);
      if (task.abort.signal.aborted) this.stopped(task, task.abort.signal.reason, started);
      else this.finish(task, started, { case: "output", value: create(TaskOutputSchema, { kind: { case: spec.case, value: output } } as MessageInitShape<typeof TaskOutputSchema>) });
    } catch (e) {
      if (task.abort.signal.aborted) this.stopped(task, task.abort.signal.reason, started);
      else if (e instanceof TaskFailure) this.finish(task, started, { case: "error", value: { code: e.code, message: e.message, retryable: e.retryable } });
      else {
        this.deps.log.error({ err: e, taskId: task.taskId, kind: task.kind }, "task handler failed unexpectedly");
        this.finish(task, started, {
          case: "error",
          value: { code: TaskErrorCode.INTERNAL, message: `the ${task.kind} handler failed unexpectedly at the trust (details in the gateway's log)`, retryable: false },
        });
      }
    } finally {
      release();
    }
  }

  private progress(task: HeldTask, fraction: number, message: string): void {
    const now = Date.now();
    task.lastProgress = { fraction, message: message.slice(0, 200) };
    if (fraction < 1 && now - task.lastProgressAt < PROGRESS_EVERY_MS) return;
    task.lastProgressAt = now;
    this.deps.send({ case: "progress", value: { taskId: task.taskId, attempt: task.attempt, ...task.lastProgress } }, injectTraceContext(task.spanContext));
  }

  private report(task: HeldTask, training: TrainingReport): void {
    if (this.held.get(task.taskId) !== task) return;
    this.deps.send({ case: "progress", value: { taskId: task.taskId, attempt: task.attempt, ...task.lastProgress, training } }, injectTraceContext(task.spanContext));
  }

  private reportImaging(task: HeldTask, imaging: ImagingImportOutput): void {
    if (this.held.get(task.taskId) !== task) return;
    this.deps.send({ case: "progress", value: { taskId: task.taskId, attempt: task.attempt, ...task.lastProgress, imaging } }, injectTraceContext(task.spanContext));
  }

  /**
   * The task's signal fired. Nothing is reported: the hub already ended a cancelled task, decides
   * expiry itself at the deadline (one authority, so the outcome does not depend on which side's
   * clock fired first), and offers an abandoned task again after a restart.
   */
  private stopped(task: HeldTask, reason: unknown, started: number): void {
    const why = reason instanceof TaskStopped ? reason.why : "cancelled";
    this.forget(task);
    task.span.setStatus({ code: SpanStatusCode.ERROR, message: why });
    task.span.end();
    this.deps.log.info({ taskId: task.taskId, kind: task.kind, outcome: why, durationMs: Date.now() - started }, "task stopped");
    this.deps.taskLog.append({
      event: why === "shutdown" ? "abandoned" : why === "deadline" ? "timed_out" : "cancelled",
      ...this.logRef(task),
      durationMs: Date.now() - started,
      reason: reason instanceof Error ? reason.message : undefined,
    });
  }

  private finish(task: HeldTask, started: number, outcome: NonNullable<MessageInitShape<typeof TaskResultSchema>["outcome"]>): void {
    const result: TaskResult = create(TaskResultSchema, { taskId: task.taskId, attempt: task.attempt, outcome });
    // Stored before it is sent and before the task is forgotten: it is always in one of the two places.
    this.deps.results.put(result);
    this.forget(task);
    this.deps.send({ case: "result", value: result }, injectTraceContext(task.spanContext));
    const err = result.outcome.case === "error" ? result.outcome.value : undefined;
    if (err) task.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
    task.span.end();
    const error = err ? { code: TaskErrorCode[err.code] ?? "UNSPECIFIED", message: err.message } : undefined;
    const event = !err ? "succeeded" : err.code === TaskErrorCode.UNSUPPORTED ? "declined" : err.code === TaskErrorCode.TIMEOUT ? "timed_out" : "failed";
    this.deps.taskLog.append({ event, ...this.logRef(task), durationMs: Date.now() - started, error });
    this.deps.log.info({ taskId: task.taskId, kind: task.kind, outcome: event, durationMs: Date.now() - started }, "task finished");
  }

  private forget(task: HeldTask): void {
    clearTimeout(task.deadlineTimer);
    clearImmediate(task.pendingAck);
    this.held.delete(task.taskId);
  }
}
