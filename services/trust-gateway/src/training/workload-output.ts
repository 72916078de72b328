import type { TaskLog } from "../tasks/task-log.js";
import type { ReportBuffer } from "./reports.js";

/** Lines kept in memory for the end of a failure message (when the policy lets output leave). */
const TAIL_LINES = 5;
/** Lines written to the task log per entry. */
const LINES_PER_ENTRY = 200;

export interface WorkloadOutputOptions {
  jobId: string;
  taskLog: TaskLog;
  reports: ReportBuffer;
  /** Whether the trust's policy lets output leave in reports. */
  forward: boolean;
  /** The job's round and its task now (for the log entry). */
  where: () => { round: number; taskId: string; attempt: number };
}

/**
 * What a job's workload printed (container stdout and stderr) or logged (WriteLog): always written to
 * the trust's task log, in batches; also put in the job's reports when the policy lets it leave.
 */
export class WorkloadOutput {
  private pending: string[] = [];
  private tailLines: string[] = [];

  constructor(private readonly opts: WorkloadOutputOptions) {}

  lines(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.pending.push(...lines);
    this.tailLines = [...this.tailLines, ...lines].slice(-TAIL_LINES);
    if (this.opts.forward) this.opts.reports.logLines(lines);
    if (this.pending.length >= LINES_PER_ENTRY) this.flush();
  }

  /** Writes what is pending to the task log. */
  flush(): void {
    while (this.pending.length > 0) {
      const lines = this.pending.splice(0, LINES_PER_ENTRY);
      const { round, taskId, attempt } = this.opts.where();
      this.opts.taskLog.append({ event: "workload_output", taskId, attempt, kind: "training", jobId: this.opts.jobId, round, lines });
    }
  }

  /** The last lines, for a failure message; none when output may not leave the trust. */
  tail(): string[] {
    return this.opts.forward ? [...this.tailLines] : [];
  }
}
