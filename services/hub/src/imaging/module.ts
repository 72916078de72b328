import { ImagingService } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { TaskKind, type ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import type { HubModule } from "../hub-module.js";
import { decodeLinkRef, LINK_OPENED_CHANNEL } from "../link/channels.js";
import type { HubDeps } from "../rpc/hub-context.js";
import type { TaskEvents } from "../tasks/task-events.js";
import { registerImagingHandlers } from "./handlers.js";
import { applyImagingTask, reconcileImagingTasks, storeImportProgress } from "./outcomes.js";
import { failUnsupportedImports, resendDeletes } from "./requests.js";

/** How often ended tasks a notice missed are applied, and unfinished deletions looked at. */
const SWEEP_MS = 60_000;
/** How long a failed deletion waits before it is sent again (the trust's imaging service may be down). */
export const DELETE_RETRY_AFTER_MS = 15 * 60_000;

export interface ImagingModule extends HubModule {
  /** Live counts from the link (TaskProgress.imaging of an import task). */
  storeProgress(trustId: string, taskId: string, counts: ImagingImportOutput): Promise<void>;
}

/**
 * Imaging at the trusts, as counts: ImagingService, the rows that follow each trust's import and
 * deletion tasks, and the sweep that sends unfinished deletions again.
 */
export function imagingModule(deps: HubDeps, taskEvents: TaskEvents): ImagingModule {
  const { db, log } = deps;
  const unsubscribes: (() => void)[] = [];
  const reconcile = async () => {
    await reconcileImagingTasks(db.em());
    await failUnsupportedImports(db.em());
    const resent = await resendDeletes(db.em(), DELETE_RETRY_AFTER_MS);
    if (resent > 0) log.info({ deletions: resent }, "imaging deletions sent again");
  };
  const sweep = new PeriodicJob("imaging-sweep", SWEEP_MS, reconcile, log);
  const onError = (what: string) => (err: unknown) => log.warn({ err }, what);

  return {
    services: [ImagingService],
    storeProgress: (trustId, taskId, counts) => storeImportProgress(db.em(), trustId, taskId, counts),
    async start() {
      unsubscribes.push(
        taskEvents.subscribe((ended) => applyImagingTask(db.em(), ended), {
          kinds: [TaskKind.IMAGING_IMPORT, TaskKind.IMAGING_DELETE],
          onMissed: () => void reconcile().catch(onError("imaging reconcile failed; the sweep retries")),
        }),
        // A gateway that runs no imaging service is never offered imports: fail them when it links.
        await db.notifier.subscribe(LINK_OPENED_CHANNEL, (payload) => {
          const ref = decodeLinkRef(payload);
          if (!ref) return;
          void failUnsupportedImports(db.em(), [ref.trustId])
            .then((failed) => failed.length && log.info({ trustId: ref.trustId, imports: failed.length }, "imports failed: the trust's gateway runs no imaging service"))
            .catch(onError("could not fail the imports of a trust without imaging"));
        }),
      );
      await reconcile();
      sweep.start();
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
      await sweep.stop();
    },
    routes: (router) => registerImagingHandlers(router, deps),
  };
}
