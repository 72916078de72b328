import type { EntityManager } from "@mikro-orm/postgresql";
import { importOnApproval } from "../imaging/requests.js";
import { readTaskEnded, type TaskEnded } from "../tasks/task-events.js";
import type { DecisionStateName, FreezeStateName } from "./entities.js";

/**
 * Records the outcome of a trust's freeze task on its decision row: frozen (with the count the trust
 * reported), suppressed (fewer members than the trust's threshold), or failed. A frozen cohort of a
 * trust that still approves a live project is then imported by that trust, in the same transaction.
 * Idempotent: only a pending freeze changes, so the import is asked for once.
 */
export async function applyFreezeTask(em: EntityManager, ended: TaskEnded): Promise<boolean> {
  const output = ended.output;
  let state: FreezeStateName = "failed";
  let count: number | null = null;
  if (ended.state === "succeeded" && output?.kind.case === "freezeCohort") {
    state = output.kind.value.suppressed ? "suppressed" : "frozen";
    count = state === "frozen" ? Number(output.kind.value.personCount) : 0;
  }
  return await em.transactional(async (tx) => {
    const rows = await tx.execute<{ project_id: string; trust_id: string; state: DecisionStateName }[]>(
      "update project_trust set freeze_state = ?, frozen_person_count = ? where freeze_task_id = ? and freeze_state = 'pending' returning project_id, trust_id, state",
      [state, count, ended.taskId],
    );
    const row = rows[0];
    if (row && state === "frozen" && row.state === "approved") await importOnApproval(tx, row.project_id, row.trust_id);
    return rows.length > 0;
  });
}

/** Applies every finished freeze task whose decision row is still pending (after a restart or missed notice). */
export async function reconcileFreezes(em: EntityManager): Promise<void> {
  const rows = await em.execute<{ freeze_task_id: string }[]>(
    `select pt.freeze_task_id from project_trust pt join task t on t.id = pt.freeze_task_id
     where pt.freeze_state = 'pending' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')`,
  );
  for (const r of rows) {
    const ended = await readTaskEnded(em.fork(), r.freeze_task_id);
    if (ended) await applyFreezeTask(em.fork(), ended);
  }
}
