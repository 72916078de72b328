import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskKind, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindName } from "@flip/shared/link/task-kinds.js";
import { appendAudit } from "../audit/chain.js";
import { cancelTask } from "../tasks/cancel-task.js";
import { createTasks, MAX_TASK_TIMEOUT_MS } from "../tasks/create-task.js";
import { failUnsupportedTasks } from "../tasks/unsupported-tasks.js";
import { lockImagingRows, uuidList, type ImagingRow } from "./rows.js";

/**
 * How long a trust has to import a cohort's studies. Imports may wait for the trust's import window,
 * so this is the longest a task may live (a day); an import still making progress at its deadline
 * continues in a new task (see `continuesAfterDeadline`).
 */
export const IMAGING_IMPORT_TIMEOUT_MS = MAX_TASK_TIMEOUT_MS;
/** How long a trust has to delete a project's research copies; an unfinished delete is sent again. */
export const IMAGING_DELETE_TIMEOUT_MS = MAX_TASK_TIMEOUT_MS;
/** Offers of a delete task before it fails (and waits to be sent again): a gateway restart re-offers it. */
export const IMAGING_DELETE_ATTEMPTS = 10;

export const IMPORT_KIND = taskKindName(TaskKind.IMAGING_IMPORT);
export const DELETE_KIND = taskKindName(TaskKind.IMAGING_DELETE);

/** What a trust without an imaging service is told, instead of an import that waits a day for nothing. */
export const noImagingAt = (trustCode: string) =>
  `trust "${trustCode}" runs no imaging service: its gateway does not take imaging imports (ask its operator to configure one, then import again)`;

/**
 * Asks each trust to import the project's frozen cohort's studies, in the caller's transaction: one
 * task per trust, and the trust's row follows that task from now on (IMPORTING). A trust linked now
 * with a gateway that runs no imaging service has its task failed at once.
 */
export async function startImports(tx: EntityManager, projectId: string, trustIds: string[], convertToNifti: boolean, actor: string): Promise<void> {
  if (trustIds.length === 0) return;
  const spec = create(TaskSpecSchema, { kind: { case: "imagingImport", value: { projectId, convertToNifti } } });
  const tasks = await createTasks(tx, trustIds.map((trustId) => ({ trustId, projectId, spec, timeoutMs: IMAGING_IMPORT_TIMEOUT_MS })), { actor });
  await tx.execute(
    `insert into project_imaging (project_id, trust_id, state, import_task_id, convert_to_nifti, updated_at)
     select ?, r.trust_id, 'importing', r.task_id, ?, ? from jsonb_to_recordset(?::jsonb) as r(trust_id uuid, task_id uuid)
     on conflict (project_id, trust_id) do update set state = 'importing', import_task_id = excluded.import_task_id,
       convert_to_nifti = excluded.convert_to_nifti, error = null, updated_at = excluded.updated_at`,
    [projectId, convertToNifti, new Date(), JSON.stringify(tasks.map((t) => ({ trust_id: t.trustId, task_id: t.id })))],
  );
  // Recorded here too, so the caller's answer already says so (applying the task's end then finds nothing to do).
  const unsupported = await failUnsupportedImports(tx, trustIds);
  if (unsupported.length) {
    await tx.execute(
      `update project_imaging p set state = 'failed', error = 'unsupported: ' || r.message
       from jsonb_to_recordset(?::jsonb) as r(id uuid, message text) where p.import_task_id = r.id and p.state = 'importing'`,
      [JSON.stringify(unsupported)],
    );
  }
}

/**
 * The import that follows a trust's approval once its cohort is frozen, with the project's NIfTI
 * choice (in the transaction that records the freeze). Nothing for a deleted project; a disabled trust's
 * row is FAILED with the reason (ImportImaging asks again once it is enabled).
 */
export async function importOnApproval(tx: EntityManager, projectId: string, trustId: string): Promise<void> {
  const [project] = await tx.execute<{ nifti: boolean; deleted: boolean }[]>(
    "select imaging_convert_to_nifti as nifti, deleted_at is not null as deleted from project where id = ?",
    [projectId],
  );
  if (!project || project.deleted) return;
  const [trust] = await tx.execute<{ code: string; disabled: boolean }[]>("select code, disabled_at is not null as disabled from trust where id = ?", [trustId]);
  if (trust?.disabled) {
    await tx.execute(
      `insert into project_imaging (project_id, trust_id, state, convert_to_nifti, error, updated_at) values (?, ?, 'failed', ?, ?, ?)
       on conflict (project_id, trust_id) do nothing`,
      [projectId, trustId, project.nifti, `trust "${trust.code}" was disabled when its cohort froze; import again once an Admin enables it`, new Date()],
    );
    return;
  }
  await startImports(tx, projectId, [trustId], project.nifti, "system");
}

/** Fails pending imports addressed to linked gateways that run no imaging service (all trusts when none are named). */
export async function failUnsupportedImports(em: EntityManager, trustIds?: string[]): Promise<{ id: string; message: string }[]> {
  return await failUnsupportedTasks(em, { kind: IMPORT_KIND, trustIds, message: noImagingAt });
}

/** Whether an import of the project was ever offered to the trust: only then can it hold research copies. */
async function mayHoldCopies(tx: EntityManager, projectId: string, trustId: string): Promise<boolean> {
  const rows = await tx.execute<unknown[]>("select 1 from task where project_id = ? and trust_id = ? and kind = ? and attempt > 0 limit 1", [projectId, trustId, IMPORT_KIND]);
  return rows.length > 0;
}

/**
 * Sends delete tasks for rows in DELETING (locked by the caller) that have none open: a trust that is
 * disabled keeps its row waiting, with the reason, until it is enabled again.
 */
async function sendDeletes(tx: EntityManager, rows: ImagingRow[], actor: string): Promise<void> {
  if (rows.length === 0) return;
  const disabled = await tx.execute<{ id: string; code: string }[]>("select id, code from trust where id = any(?::uuid[]) and disabled_at is not null", [
    uuidList(rows.map((r) => r.trust_id)),
  ]);
  const now = new Date();
  const targets: ImagingRow[] = [];
  for (const row of rows) {
    const off = disabled.find((d) => d.id === row.trust_id);
    if (!off) targets.push(row);
    else {
      await tx.execute("update project_imaging set error = ?, updated_at = ? where project_id = ? and trust_id = ?", [
        `trust "${off.code}" is disabled: the deletion is sent once an Admin enables it`,
        now,
        row.project_id,
        row.trust_id,
      ]);
    }
  }
  // A batch holds one task per trust: one batch per project.
  for (const projectId of new Set(targets.map((r) => r.project_id))) {
    const batch = targets.filter((r) => r.project_id === projectId);
    const tasks = await createTasks(
      tx,
      batch.map((r) => ({
        trustId: r.trust_id,
        projectId,
        spec: create(TaskSpecSchema, { kind: { case: "imagingDelete", value: { projectId, reason: r.delete_reason ?? "" } } }),
        timeoutMs: IMAGING_DELETE_TIMEOUT_MS,
        maxAttempts: IMAGING_DELETE_ATTEMPTS,
      })),
      { actor },
    );
    await tx.execute(
      `update project_imaging p set delete_task_id = r.task_id, error = null, updated_at = ?
       from jsonb_to_recordset(?::jsonb) as r(trust_id uuid, task_id uuid)
       where p.project_id = ? and p.trust_id = r.trust_id`,
      [now, JSON.stringify(tasks.map((t) => ({ trust_id: t.trustId, task_id: t.id }))), projectId],
    );
  }
}

/**
 * Asks every trust that may hold research copies of the project's images (all trusts, or those named)
 * to delete them, in the caller's transaction: a running import is cancelled and the row becomes
 * DELETING until the trust confirms. A trust that was never offered an import holds nothing: its row is
 * DELETED at once. Rows already deleting or deleted are left as they are.
 */
export async function requestImagingDeletes(tx: EntityManager, projectId: string, trustIds: string[] | "all", reason: string, actor: string): Promise<void> {
  const rows =
    trustIds === "all"
      ? await tx.execute<ImagingRow[]>("select * from project_imaging where project_id = ? order by trust_id for update", [projectId])
      : await lockImagingRows(tx, projectId, trustIds);
  const open = rows.filter((r) => r.state !== "deleting" && r.state !== "deleted");
  if (open.length === 0) return;
  const now = new Date();
  const toSend: ImagingRow[] = [];
  for (const row of open) {
    if (row.import_task_id) await cancelTask(tx, { taskId: row.import_task_id, reason: `imaging: ${reason}`, actor });
    if (await mayHoldCopies(tx, projectId, row.trust_id)) {
      await tx.execute("update project_imaging set state = 'deleting', delete_reason = ?, delete_task_id = null, error = null, updated_at = ? where project_id = ? and trust_id = ?", [
        reason,
        now,
        projectId,
        row.trust_id,
      ]);
      toSend.push({ ...row, state: "deleting", delete_reason: reason });
    } else {
      await tx.execute("update project_imaging set state = 'deleted', delete_reason = ?, error = null, updated_at = ? where project_id = ? and trust_id = ?", [
        reason,
        now,
        projectId,
        row.trust_id,
      ]);
      await appendAudit(tx, {
        actor,
        action: "imaging.deleted",
        target: `project:${projectId}`,
        after: { trustId: row.trust_id, trust: await trustCode(tx, row.trust_id), reason, studiesDeleted: 0, imagesDeleted: 0, niftiDeleted: 0, nothingImported: true },
      });
    }
  }
  await sendDeletes(tx, toSend, actor);
}

/**
 * Sends again the deletions that are not done: rows whose delete task failed or expired at least
 * `retryAfterMs` ago, or that wait for their trust to be enabled. A deletion is never dropped.
 * Rows another replica is handling are skipped. Returns how many were sent.
 */
export async function resendDeletes(em: EntityManager, retryAfterMs: number): Promise<number> {
  return await em.transactional(async (tx) => {
    const rows = await tx.execute<ImagingRow[]>(
      `select p.* from project_imaging p
       join trust tr on tr.id = p.trust_id and tr.disabled_at is null
       left join task t on t.id = p.delete_task_id
       where p.state = 'deleting'
         and (p.delete_task_id is null or (t.state in ('failed', 'cancelled', 'expired') and t.ended_at < ?))
       order by p.project_id, p.trust_id
       for update of p skip locked`,
      [new Date(Date.now() - retryAfterMs)],
    );
    await sendDeletes(tx, rows, "system");
    return rows.length;
  });
}

/** A trust's code, for messages and audit entries (its id when it is gone). */
export async function trustCode(em: EntityManager, trustId: string): Promise<string> {
  const [t] = await em.execute<{ code: string }[]>("select code from trust where id = ?", [trustId]);
  return t?.code ?? trustId;
}
