import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { TaskErrorCode } from "@flip/gen/flip/link/v1/link_pb.js";
import type { ImagingImportOutput, TaskOutput, TaskSpec, TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";

/** A task kind as the oneof case of TaskSpec and TaskOutput: "echo", "cohortQuery", ... */
export type TaskCase = NonNullable<TaskSpec["kind"]["case"]>;
export type SpecOf<K extends TaskCase> = Extract<TaskSpec["kind"], { case: K }>["value"];
export type OutputOf<K extends TaskCase> = MessageInitShape<GenMessage<Extract<TaskOutput["kind"], { case: K }>["value"]>>;

/** What a handler gets besides its spec. */
export interface TaskContext {
  taskId: string;
  attempt: number;
  /** Empty when the task belongs to no project (diagnostics). */
  projectId: string;
  deadline: Date;
  trustCode: string;
  /**
   * Aborted when the hub cancels the task, its deadline passes, or the gateway stops. A handler
   * stops its work promptly when it fires (pass it on to fetch, child processes, queries).
   */
  signal: AbortSignal;
  /** Reports progress, 0..1 (negative when unknown); sent at most about once a second. */
  progress(fraction: number, message?: string): void;
  /**
   * Sends what a training workload reported, live, with the task's latest progress. Sent at once: the
   * caller batches (about once a second). The task's result repeats it, so one lost on the way is not lost.
   */
  report(training: TrainingReport): void;
  /** Sends an imaging import's counts so far, at once (the caller paces it), with the task's latest progress. */
  reportImaging(counts: ImagingImportOutput): void;
  log: Logger;
}

/** Runs one kind of task at the trust and returns its output; throws TaskFailure for an expected failure. */
export type TaskHandler<K extends TaskCase> = (spec: SpecOf<K>, ctx: TaskContext) => Promise<OutputOf<K>>;

/** The gateway's task handlers by kind. A kind without a handler is declined as UNSUPPORTED. */
export type TaskHandlers = { [K in TaskCase]?: TaskHandler<K> };

/**
 * An expected failure, reported to the hub as it is. Its message is shown to hub users, so it must
 * never contain patient data; anything else a handler throws is reported as a generic INTERNAL error
 * and its detail stays in the gateway's log.
 */
export class TaskFailure extends Error {
  override readonly name = "TaskFailure";
  constructor(
    readonly code: TaskErrorCode,
    message: string,
    /** Whether another attempt could succeed (e.g. a local service was briefly down). */
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export { TaskErrorCode };
