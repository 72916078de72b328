import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import type { TaskEvents } from "../tasks/task-events.js";
import { applyCohortTask, reconcileCohortQuery } from "./answers.js";
import { registerCohortHandlers } from "./handlers.js";

/** Reconciles every query that still has pending answers for finished tasks (at start and after a missed notice). */
async function reconcileAll(deps: HubDeps): Promise<void> {
  const rows = await deps.db.em().execute<{ query_id: string }[]>(
    `select distinct a.query_id from cohort_answer a join task t on t.id = a.task_id
     where a.state = 'pending' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')`,
  );
  for (const r of rows) await reconcileCohortQuery(deps.db.em(), r.query_id, deps.metrics);
}

/** Cohort discovery: queries go to every trust as tasks; their results become per-trust answers. */
export function cohortModule(deps: HubDeps, taskEvents: TaskEvents): HubModule {
  const { db, log } = deps;
  const unsubscribes: (() => void)[] = [];
  const onError = (err: unknown) => log.error({ err }, "applying a cohort answer failed");
  return {
    services: [CohortService],
    routes: (router) => registerCohortHandlers(router, deps),
    async start() {
      unsubscribes.push(
        taskEvents.subscribe((ended) => applyCohortTask(db.em(), ended, deps.metrics).then(() => undefined), {
          kinds: [TaskKind.COHORT_QUERY],
          onMissed: () => void reconcileAll(deps).catch(onError),
        }),
      );
      await reconcileAll(deps);
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
    },
  };
}
