import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskErrorCode, TaskErrorCodeSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind, type ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { appendAudit } from "../audit/chain.js";
import { isUuid } from "../domain/ids.js";
import { readTaskEnded, type TaskEnded } from "../tasks/task-events.js";
import { countsFromJson, countsToJson, type ImagingRow } from "./rows.js";
import { startImports, trustCode } from "./requests.js";

/**
 * Stores the counts a trust reported while its import runs (TaskProgress.imaging). Only for the
 * trust's current import of the project, while that task is open; a report that repeats the counts
 * changes nothing.
 */
export async function storeImportProgress(em: EntityManager, trustId: string, taskId: string, counts: ImagingImportOutput): Promise<void> {
  if (!isUuid(taskId)) return;
  const json = JSON.stringify(countsToJson(counts));
  const now = new Date();
  await em.execute(
    `update project_imaging p set counts = ?::jsonb, counts_changed_at = ?, updated_at = ?
     from task t
     where p.import_task_id = ? and p.trust_id = ? and p.state = 'importing'
       and t.id = p.import_task_id and t.state in ('offered', 'running')
       and p.counts is distinct from ?::jsonb`,
    [json, now, now, taskId, trustId, json],
  );
}

/** A task's failure in words, led by its category ("unavailable: the PACS did not answer"). */
function failureText(ended: TaskEnded): string {
  if (ended.state === "expired") return `timeout: ${ended.endReason || "the deadline passed"}`;
  if (ended.state === "cancelled") return ended.endReason || "cancelled";
  const code = ended.error?.code ?? TaskErrorCode.UNSPECIFIED;
  const label = (TaskErrorCodeSchema.values.find((v) => v.number === code)?.name ?? "").replace("TASK_ERROR_CODE_", "").toLowerCase();
  const message = ended.error?.message || ended.endReason || "the task failed";
  return label && label !== "unspecified" ? `${label}: ${message}` : message;
}

/**
 * An import that reached its deadline while the trust was still working through it (studies queued or
 * importing, or waiting for the import window) and had made progress during the task: the trust keeps
 * its queue, so a new task picks it up where it is. One that made no progress fails.
 */
function continuesAfterDeadline(row: ImagingRow & { task_created_at: Date; trust_enabled: boolean }, ended: TaskEnded): boolean {
  if (ended.state !== "expired" || !row.trust_enabled) return false;
  const c = countsFromJson(row.counts);
  const remaining = c !== undefined && (c.studiesQueued + c.studiesImporting > 0n || c.waitingForWindow);
  return remaining && row.counts_changed_at !== null && new Date(row.counts_changed_at) > new Date(row.task_created_at);
}

async function applyImportEnded(em: EntityManager, ended: TaskEnded): Promise<void> {
  await em.transactional(async (tx) => {
    const [row] = await tx.execute<(ImagingRow & { task_created_at: Date; trust_enabled: boolean })[]>(
      `select p.*, t.created_at as task_created_at, tr.disabled_at is null as trust_enabled
       from project_imaging p join task t on t.id = p.import_task_id join trust tr on tr.id = p.trust_id
       where p.import_task_id = ? and p.state = 'importing' for update of p`,
      [ended.taskId],
    );
    if (!row) return;
    const now = new Date();
    if (ended.state === "succeeded" && ended.output?.kind.case === "imagingImport") {
      await tx.execute("update project_imaging set state = 'done', counts = ?::jsonb, counts_changed_at = ?, error = null, updated_at = ? where project_id = ? and trust_id = ?", [
        JSON.stringify(countsToJson(ended.output.kind.value)),
        now,
        now,
        row.project_id,
        row.trust_id,
      ]);
      return;
    }
    if (continuesAfterDeadline(row, ended)) {
      await startImports(tx, row.project_id, [row.trust_id], row.convert_to_nifti, "system");
      return;
    }
    await tx.execute("update project_imaging set state = 'failed', error = ?, updated_at = ? where project_id = ? and trust_id = ?", [
      ended.state === "succeeded" ? "internal: the trust's result held no import counts" : failureText(ended),
      now,
      row.project_id,
      row.trust_id,
    ]);
  });
}

async function applyDeleteEnded(em: EntityManager, ended: TaskEnded): Promise<void> {
  await em.transactional(async (tx) => {
    const [row] = await tx.execute<ImagingRow[]>("select * from project_imaging where delete_task_id = ? and state = 'deleting' for update", [ended.taskId]);
    if (!row) return;
    const now = new Date();
    if (ended.state !== "succeeded") {
      // The row stays DELETING: the sweep sends the deletion again (resendDeletes).
      const error = `deleting failed, will be retried: ${failureText(ended)}`;
      await tx.execute("update project_imaging set error = ?, updated_at = ? where project_id = ? and trust_id = ? and error is distinct from ?", [
        error,
        now,
        row.project_id,
        row.trust_id,
        error,
      ]);
      return;
    }
    const out = ended.output?.kind.case === "imagingDelete" ? ended.output.kind.value : undefined;
    await tx.execute("update project_imaging set state = 'deleted', error = null, updated_at = ? where project_id = ? and trust_id = ?", [now, row.project_id, row.trust_id]);
    await appendAudit(tx, {
      actor: "system",
      action: "imaging.deleted",
      target: `project:${row.project_id}`,
      after: {
        trustId: row.trust_id,
        trust: await trustCode(tx, row.trust_id),
        reason: row.delete_reason,
        taskId: ended.taskId,
        studiesDeleted: Number(out?.studiesDeleted ?? 0n),
        imagesDeleted: Number(out?.imagesDeleted ?? 0n),
        niftiDeleted: Number(out?.niftiDeleted ?? 0n),
      },
    });
  });
}

/** Records what an ended imaging task means for its trust's row. Idempotent: only the row's current task, once. */
export async function applyImagingTask(em: EntityManager, ended: TaskEnded): Promise<void> {
  if (ended.kind === TaskKind.IMAGING_IMPORT) await applyImportEnded(em, ended);
  else if (ended.kind === TaskKind.IMAGING_DELETE) await applyDeleteEnded(em, ended);
}

/** Applies every ended import or delete task a row still waits on (after a restart or a missed notice). */
export async function reconcileImagingTasks(em: EntityManager): Promise<void> {
  const rows = await em.execute<{ task_id: string }[]>(
    `select p.import_task_id as task_id from project_imaging p join task t on t.id = p.import_task_id
     where p.state = 'importing' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')
     union all
     select p.delete_task_id from project_imaging p join task t on t.id = p.delete_task_id
     where p.state = 'deleting' and t.state in ('succeeded', 'failed', 'cancelled', 'expired') and (t.state = 'succeeded' or p.error is null)`,
  );
  for (const r of rows) {
    const ended = await readTaskEnded(em.fork(), r.task_id);
    if (ended) await applyImagingTask(em.fork(), ended);
  }
}
