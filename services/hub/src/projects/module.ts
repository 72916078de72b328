import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { onTaskEndedNotice } from "../tasks/channels.js";
import { applyFreezeTask, reconcileFreezes } from "./freeze.js";
import { registerProjectHandlers } from "./handlers.js";

/** Projects and governance; listens for the trusts' freeze tasks to finish. */
export function projectModule(deps: HubDeps): HubModule {
  const { db, log } = deps;
  const unsubscribes: (() => void)[] = [];
  const onError = (err: unknown) => log.error({ err }, "recording a cohort freeze failed");
  return {
    services: [ProjectService],
    routes: (router) => registerProjectHandlers(router, deps),
    async start() {
      unsubscribes.push(
        await onTaskEndedNotice(db.notifier, (n) => {
          if (n.kind === "freeze_cohort") applyFreezeTask(db.em(), n.taskId).catch(onError);
        }),
        db.notifier.onReconnect(() => void reconcileFreezes(db.em()).catch(onError)),
      );
      await reconcileFreezes(db.em());
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
    },
  };
}
