import type { ConnectRouter } from "@connectrpc/connect";
import { CohortService, SubmitCohortQueryRequestSchema, SubmitCohortQueryResponseSchema } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { createCallOf, createOnce } from "../rpc/idempotency-keys.js";
import { reconcileCohortQuery } from "./answers.js";
import { checkCohortSql } from "./check.js";
import { listProjectCohortQueries, visibleCohortQuery } from "./queries.js";
import { submitCohortQuery } from "./submit.js";
import { cohortQueriesToProto, cohortQueryToProto } from "./to-proto.js";
import { watchCohortQuery } from "./watch.js";

/** flip.hub.v1.CohortService: thin handlers over the cohort domain (submit.ts, queries.ts, watch.ts, check.ts). */
export function registerCohortHandlers(router: ConnectRouter, deps: HubDeps): void {
  const { db, config, log } = deps;
  router.service(CohortService, {
    submitCohortQuery: (req, ctx) =>
      answer(log, ctx, async () => {
        const call = createCallOf(ctx, SubmitCohortQueryRequestSchema, req, SubmitCohortQueryResponseSchema, config.idempotencyKeyTtlMs);
        return await createOnce(db.em(), call, async (em) => {
          const submission = { projectId: req.projectId, name: req.name, sql: req.sql };
          const query = await submitCohortQuery(em, callerOf(ctx), submission, { maxInFlightPerUser: config.maxCohortQueriesPerUser });
          log.info({ queryId: query.id, projectId: query.projectId }, "cohort query submitted");
          return { query: await cohortQueryToProto(em, query, config.offlineAfterMs) };
        });
      }),
    getCohortQuery: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const query = await visibleCohortQuery(em, callerOf(ctx), req.queryId);
        await reconcileCohortQuery(em, query.id, deps.metrics);
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
          queries: await cohortQueriesToProto(em, queries, config.offlineAfterMs),
          page: { nextPageToken: nextPageToken(page, queries.length) },
        };
      }),
    checkCohortQuery: (req, ctx) => answer(log, ctx, async () => ({ problems: await checkCohortSql(req.sql) })),
  });
}
