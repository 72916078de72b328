import { appendFileSync, mkdirSync } from "node:fs";
import * as path from "node:path";

/**
 * One line of the trust's own record of the tasks it ran. Ids, kinds, times and outcomes only: never specs,
 * outputs or patient data. The exception is `workload_output`: what a training workload printed or logged,
 * kept here at the trust whatever its policy lets leave.
 */
export interface TaskLogEntry {
  at: string;
  event: "accepted" | "started" | "succeeded" | "failed" | "cancelled" | "timed_out" | "abandoned" | "declined" | "workload_output";
  taskId: string;
  attempt: number;
  kind: string;
  projectId?: string;
  traceId?: string;
  durationMs?: number;
  /** For failures: the error code and the message reported to the hub. */
  error?: { code: string; message: string };
  reason?: string;
  /** For workload_output: the training job, its round then (0 between rounds), the lines. */
  jobId?: string;
  round?: number;
  lines?: string[];
}

/** The trust's append-only task log (JSON lines), kept whatever the hub records. */
export interface TaskLog {
  append(entry: Omit<TaskLogEntry, "at">): void;
}

export class FileTaskLog implements TaskLog {
  constructor(private readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  }

  append(entry: Omit<TaskLogEntry, "at">): void {
    appendFileSync(this.file, JSON.stringify({ at: new Date().toISOString(), ...entry }) + "\n", { mode: 0o600 });
  }
}

/** For simulated gateways (benchmarks), which keep no local record. */
export const noTaskLog: TaskLog = { append() {} };
