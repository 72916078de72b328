import { Code, ConnectError } from "@connectrpc/connect";
import type { ImagingClient } from "@flip/imaging/client.js";
import type { ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { TaskErrorCode, TaskFailure, type TaskHandler } from "../task-handler.js";

/** How often a running import's counts are read and sent to the hub. */
export const IMPORT_POLL_MS = 2_000;

/**
 * Turns an imaging-service error into the failure reported to the hub. Its messages are worded for the
 * hub (no accession numbers or UIDs); only the codes decide whether a retry could help.
 */
function failureFromImaging(e: unknown): TaskFailure {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.FailedPrecondition:
    case Code.InvalidArgument:
    case Code.NotFound:
      return new TaskFailure(TaskErrorCode.INVALID, err.rawMessage, false, { cause: e });
    case Code.Unavailable:
      return new TaskFailure(TaskErrorCode.UNAVAILABLE, "the trust's imaging service (or a service it depends on) is unavailable", true, { cause: e });
    case Code.Unauthenticated:
      return new TaskFailure(TaskErrorCode.INTERNAL, "the trust's imaging service refused the gateway's internal key (check FLIP_TRUST_INTERNAL_KEY)", false, { cause: e });
    default:
      return new TaskFailure(TaskErrorCode.INTERNAL, "the trust's imaging service failed", false, { cause: e });
  }
}

function settled(c: ImagingImportOutput): boolean {
  return c.studiesQueued === 0n && c.studiesImporting === 0n;
}

function fraction(c: ImagingImportOutput): number {
  if (c.studiesRequested === 0n) return 1;
  const done = c.studiesImported + c.studiesFailed + c.studiesNotFound + c.studiesAmbiguous;
  return Number(done) / Number(c.studiesRequested);
}

/**
 * Imports an approved project's imaging at the trust: asks the imaging service to queue the frozen
 * cohort's studies (it takes the accession numbers from data-access itself), then follows the import,
 * sending its counts to the hub, until every study has an outcome. Counts only: no identifier leaves.
 * Run again (a retry, a restart), it picks the same import up: the imaging service is idempotent.
 */
export function imagingImportHandler(imaging: ImagingClient): TaskHandler<"imagingImport"> {
  return async (spec, ctx) => {
    try {
      await imaging.importStudies({ projectId: spec.projectId, convertToNifti: spec.convertToNifti }, { signal: ctx.signal });
      for (;;) {
        const { counts } = await imaging.getImportStatus({ projectId: spec.projectId }, { signal: ctx.signal });
        if (!counts) throw new Error("the imaging service answered without counts");
        const f = fraction(counts);
        ctx.progress(f, `${counts.studiesImported} of ${counts.studiesRequested} studies imported${counts.waitingForWindow ? "; waiting for the import window" : ""}`);
        if (settled(counts)) return counts;
        ctx.reportImaging(counts);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, IMPORT_POLL_MS);
          ctx.signal.addEventListener("abort", () => (clearTimeout(timer), reject(ctx.signal.reason)), { once: true });
        });
      }
    } catch (e) {
      ctx.signal.throwIfAborted();
      if (e instanceof TaskFailure) throw e;
      throw failureFromImaging(e);
    }
  };
}

/** Deletes a project's research copies at the trust (the project was deleted or the approval withdrawn). */
export function imagingDeleteHandler(imaging: ImagingClient): TaskHandler<"imagingDelete"> {
  return async (spec, ctx) => {
    try {
      const d = await imaging.deleteProjectImages({ projectId: spec.projectId, reason: spec.reason }, { signal: ctx.signal });
      ctx.log.info({ projectId: spec.projectId, reason: spec.reason, studies: Number(d.studiesDeleted), images: Number(d.imagesDeleted) }, "project's research copies deleted");
      return { studiesDeleted: d.studiesDeleted, imagesDeleted: d.imagesDeleted, niftiDeleted: d.niftiDeleted };
    } catch (e) {
      ctx.signal.throwIfAborted();
      throw failureFromImaging(e);
    }
  };
}
