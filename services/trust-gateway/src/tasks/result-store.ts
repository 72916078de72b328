import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { TaskResultSchema, type TaskResult } from "@flip/gen/flip/link/v1/link_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";

/**
 * Results the hub has not acknowledged yet. A result is kept until its ResultAck, so one produced
 * while the link is down, or just before the gateway restarts, is sent again after the next Welcome.
 */
export interface ResultStore {
  put(result: TaskResult): void;
  get(taskId: string): TaskResult | undefined;
  remove(taskId: string): void;
  all(): TaskResult[];
}

export class MemoryResultStore implements ResultStore {
  private readonly results = new Map<string, TaskResult>();
  put(r: TaskResult): void {
    this.results.set(r.taskId, r);
  }
  get(taskId: string): TaskResult | undefined {
    return this.results.get(taskId);
  }
  remove(taskId: string): void {
    this.results.delete(taskId);
  }
  all(): TaskResult[] {
    return [...this.results.values()];
  }
}

const FILE_RE = /^([0-9a-f-]{36})\.result$/;

/** One file per result (binary TaskResult), written atomically: a crash leaves either the old state or the new. */
export class FileResultStore implements ResultStore {
  private readonly memory = new MemoryResultStore();

  constructor(
    private readonly dir: string,
    log: Logger,
  ) {
    // Outputs are aggregates, never rows, but still the trust's business: owner-only.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir)) {
      const m = FILE_RE.exec(name);
      if (!m) continue;
      try {
        this.memory.put(fromBinary(TaskResultSchema, readFileSync(path.join(dir, name))));
      } catch (err) {
        log.warn({ err, file: name }, "unreadable stored result skipped");
      }
    }
  }

  private file(taskId: string): string | undefined {
    return /^[0-9a-f-]{36}$/i.test(taskId) ? path.join(this.dir, `${taskId}.result`) : undefined;
  }

  put(r: TaskResult): void {
    this.memory.put(r);
    const file = this.file(r.taskId);
    if (!file) return;
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, toBinary(TaskResultSchema, r), { flush: true, mode: 0o600 });
    renameSync(tmp, file);
  }

  get(taskId: string): TaskResult | undefined {
    return this.memory.get(taskId);
  }

  remove(taskId: string): void {
    this.memory.remove(taskId);
    const file = this.file(taskId);
    if (file) rmSync(file, { force: true });
  }

  all(): TaskResult[] {
    return this.memory.all();
  }
}
