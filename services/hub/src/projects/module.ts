import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { TaskEvents } from "../tasks/task-events.js";
import { applyFreezeTask, reconcileFreezes } from "./freeze.js";
import { registerProjectHandlers } from "./handlers.js";

/** Projects and governance; listens for the trusts' freeze tasks to finish. */
export function projectModule(deps: HubDeps, taskEvents: TaskEvents): HubModule {
  const { db, log } = deps;
  const unsubscribes: (() => void)[] = [];
  const onError = (err: unknown) => log.error({ err }, "recording a cohort freeze failed");
  return {
    services: [ProjectService],
    routes: (router) => registerProjectHandlers(router, deps),
    async start() {
      unsubscribes.push(
        taskEvents.subscribe((ended) => applyFreezeTask(db.em(), ended).then(() => undefined), {
          kinds: [TaskKind.FREEZE_COHORT],
          onMissed: () => void reconcileFreezes(db.em()).catch(onError),
        }),
      );
      await reconcileFreezes(db.em());
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
    },
  };
}
