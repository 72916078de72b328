import type { Database } from "../db/database.js";
import { GroupCommit } from "../db/group-commit.js";
import { endSucceeded, type Success } from "./task-outcomes.js";

/**
 * The results every task ends with, written by group commit (successes from any trust's stream that
 * arrive while a statement is in flight go together in the next), so a round for a thousand trusts is
 * recorded at the speed it is created.
 */
export class SuccessBatcher {
  private readonly commit: GroupCommit<Success, boolean>;
  /** Task ids waiting or in flight: one statement must not name a task twice (it would end it once and answer twice). */
  private readonly pending = new Set<string>();

  constructor(db: Database) {
    this.commit = new GroupCommit(async (batch) => {
      const ended = await endSucceeded(db.em(), batch);
      return batch.map((s) => ended.has(s.taskId));
    });
  }

  /**
   * Resolves true when this success ended its task, false when it did not (a repeat, another trust's
   * task, the wrong kind, or the same task already on its way): the caller then takes the careful
   * path, which records why.
   */
  async end(success: Success): Promise<boolean> {
    if (this.pending.has(success.taskId)) return false;
    this.pending.add(success.taskId);
    try {
      return await this.commit.submit(success);
    } finally {
      this.pending.delete(success.taskId);
    }
  }
}
