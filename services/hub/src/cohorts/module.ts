import type { ConnectRouter } from "@connectrpc/connect";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import type { HubModule } from "../hub-module.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { nextPageToken, readPage } from "../rpc/paging.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { TaskEvents } from "../tasks/task-events.js";
import { applyCohortTask, reconcileCohortQuery } from "./answers.js";
import { listProjectCohortQueries, visibleCohortQuery } from "./queries.js";
import { submitCohortQuery } from "./submit.js";
import { cohortQueryToProto } from "./to-proto.js";
import { watchCohortQuery } from "./watch.js";

/** Reconciles every query that still has pending answers for finished tasks (at start and after a missed notice). */
async function reconcileAll(deps: HubDeps): Promise<void> {
  const rows = await deps.db.em().execute<{ query_id: string }[]>(
    `select distinct a.query_id from cohort_answer a join task t on t.id = a.task_id
     where a.state = 'pending' and t.state in ('succeeded', 'failed', 'cancelled', 'expired')`,
  );
  for (const r of rows) await reconcileCohortQuery(deps.db.em(), r.query_id);
}

/** Cohort discovery: queries go to every trust as tasks; their results become per-trust answers. */
export function cohortModule(deps: HubDeps, taskEvents: TaskEvents): HubModule {
  const { db, config, log } = deps;
  const unsubscribes: (() => void)[] = [];
  const onError = (err: unknown) => log.error({ err }, "applying a cohort answer failed");
  return {
    services: [CohortService],
    async start() {
      unsubscribes.push(
        taskEvents.subscribe((ended) => applyCohortTask(db.em(), ended).then(() => undefined), {
          kinds: [TaskKind.COHORT_QUERY],
          onMissed: () => void reconcileAll(deps).catch(onError),
        }),
      );
      await reconcileAll(deps);
    },
    async stop() {
      for (const u of unsubscribes.splice(0)) u();
    },
    routes(router: ConnectRouter) {
      router.service(CohortService, {
        submitCohortQuery: (req, ctx) =>
          answer(log, ctx, async () => {
            const em = db.em();
            const query = await submitCohortQuery(em, callerOf(ctx), { projectId: req.projectId, name: req.name, sql: req.sql });
            log.info({ queryId: query.id, projectId: query.projectId }, "cohort query submitted");
            return { query: await cohortQueryToProto(em, query, config.offlineAfterMs) };
          }),
        getCohortQuery: (req, ctx) =>
          answer(log, ctx, async () => {
            const em = db.em();
            const query = await visibleCohortQuery(em, callerOf(ctx), req.queryId);
            await reconcileCohortQuery(em, query.id);
            return { query: await cohortQueryToProto(em, query, config.offlineAfterMs) };
          }),
        async *watchCohortQuery(req, ctx) {
          try {
            for await (const query of watchCohortQuery(deps, callerOf(ctx), req.queryId, ctx.signal)) yield { query };
          } catch (e) {
            await answer(log, ctx, () => Promise.reject(e));
          }
        },
        listCohortQueries: (req, ctx) =>
          answer(log, ctx, async () => {
            const em = db.em();
            const page = readPage(req.page);
            const queries = await listProjectCohortQueries(em, callerOf(ctx), req.projectId, page);
            return {
              queries: await Promise.all(queries.map((q) => cohortQueryToProto(em, q, config.offlineAfterMs))),
              page: { nextPageToken: nextPageToken(page, queries.length) },
            };
          }),
      });
    },
  };
}
