import type { TaskError } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind, type TaskOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName } from "@flip/shared/link/task-kinds.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { Database, EntityManager } from "../db/database.js";
import { onTaskEndedNotice, type TaskEndedNotice } from "./channels.js";
import { Task, type TaskStateName } from "./entities.js";
import { errorFromJson, outputFromJson } from "./task-json.js";

/** A task reached a final state: its outcome as recorded (read back from the table). */
export interface TaskEnded {
  taskId: string;
  trustId: string;
  kind: TaskKind;
  projectId: string | undefined;
  state: Extract<TaskStateName, "succeeded" | "failed" | "cancelled" | "expired">;
  /** Set when the task succeeded. */
  output: TaskOutput | undefined;
  /** Set when it did not: the trust's error, or the hub's (deadline, cancellation, attempts). */
  error: TaskError | undefined;
  endReason: string;
  endedAt: Date;
}

export interface TaskEndedSubscription {
  /** Only tasks of these kinds; all kinds when absent. */
  kinds?: TaskKind[];
  /**
   * Called after the hub's notification connection was re-established: notices sent meanwhile were
   * missed, so read the state you wait on from the table (e.g. with getTask) instead.
   */
  onMissed?: () => void;
}

type Listener = { fn: (e: TaskEnded) => void | Promise<void>; kinds: Set<TaskKind> | undefined; onMissed: (() => void) | undefined };

/**
 * Tells hub modules when tasks end, whichever replica recorded the end: every replica hears the
 * Postgres notice and reads the outcome from the table. Each listener runs once per ended task per
 * replica, so a module that acts on an end must make that action idempotent (e.g. a conditional
 * update of its own row) when it runs on several replicas.
 */
export class TaskEvents {
  private readonly listeners = new Set<Listener>();
  private unsubscribe: (() => void) | undefined;
  private unReconnect: (() => void) | undefined;
  /** Deliveries under way: each reads the database, so stopping waits for them before it is closed. */
  private readonly delivering = new Set<Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await onTaskEndedNotice(this.db.notifier, (n) => {
      const delivery = this.deliver(n);
      this.delivering.add(delivery);
      void delivery.finally(() => this.delivering.delete(delivery));
    });
    this.unReconnect = this.db.notifier.onReconnect(() => {
      for (const l of this.listeners) l.onMissed?.();
    });
  }

  /** Stops hearing ends and waits for deliveries under way (they read the database the caller closes next). */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unReconnect?.();
    this.listeners.clear();
    await Promise.allSettled([...this.delivering]);
  }

  /** Calls `fn` for every task that ends from now on; returns an unsubscribe function. */
  subscribe(fn: (e: TaskEnded) => void | Promise<void>, opts: TaskEndedSubscription = {}): () => void {
    const l: Listener = { fn, kinds: opts.kinds ? new Set(opts.kinds) : undefined, onMissed: opts.onMissed };
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private async deliver(n: TaskEndedNotice): Promise<void> {
    const kind = taskKindFromName(n.kind) ?? TaskKind.UNSPECIFIED;
    const targets = [...this.listeners].filter((l) => !l.kinds || l.kinds.has(kind));
    if (targets.length === 0) return;
    let event: TaskEnded | undefined;
    try {
      event = await readTaskEnded(this.db.em(), n.taskId);
    } catch (err) {
      this.log.error({ err, taskId: n.taskId }, "could not read an ended task's outcome");
      return;
    }
    if (!event) return;
    for (const l of targets) {
      try {
        await l.fn(event);
      } catch (err) {
        this.log.error({ err, taskId: n.taskId }, "task-ended listener failed");
      }
    }
  }
}

/** A task's final outcome, or undefined while it is still open. */
export async function readTaskEnded(em: EntityManager, taskId: string): Promise<TaskEnded | undefined> {
  const t = await em.findOne(Task, { id: taskId }, { refresh: true });
  if (!t || !t.endedAt || t.state === "pending" || t.state === "offered" || t.state === "running") return undefined;
  return {
    taskId: t.id,
    trustId: t.trustId,
    kind: taskKindFromName(t.kind) ?? TaskKind.UNSPECIFIED,
    projectId: t.projectId ?? undefined,
    state: t.state,
    output: outputFromJson(t.output),
    error: errorFromJson(t.error),
    endReason: t.endReason ?? "",
    endedAt: t.endedAt,
  };
}
