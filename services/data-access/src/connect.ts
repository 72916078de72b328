/**
 * The DataAccessService handlers: validate the request, call one domain function, map its errors to
 * Connect codes. The caller's key is checked by the interceptor in auth/internal-key.ts.
 * Researchers' SQL and row values never reach the logs; project and query ids, outcomes and timings do.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import {
  DataAccessService,
  FreezeCohortResponseSchema,
  GetCohortRowsResponseSchema,
  GetCohortStatisticsResponseSchema,
  GetFrozenCohortResponseSchema,
  GetQueryBudgetResponseSchema,
  ListCohortAccessionsResponseSchema,
  QueryRejectionSchema,
  ValidateQueryResponseSchema,
} from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { CohortDeps } from "./cohorts/deps.js";
import { CohortBelowThresholdError, CohortNotFoundError } from "./cohorts/errors.js";
import { freezeCohort, getFrozenCohort } from "./cohorts/freeze.js";
import { DEFAULT_BATCH_ROWS, frozenCohortRows, listCohortAccessions, MAX_BATCH_ROWS } from "./cohorts/row-level-access.js";
import { QueryBudgetSpentError } from "./cohorts/query-guard.js";
import { getCohortStatistics } from "./cohorts/statistics.js";
import type { DataAccessMetrics } from "./metrics.js";
import { DatabaseUnavailableError, DataDependentFailureError, QueryFailedError, ResultTooLargeError, StatementTimeoutError } from "./execution/errors.js";
import { PolicyDeniedError } from "./policy/policy.js";
import { QueryRejectedError } from "./validation/rejection.js";
import { validateQuery } from "./validation/validate.js";
import { cohortQueryOutput, freezeCohortOutput } from "./wire.js";

const MAX_ID_LENGTH = 200;
const MAX_MIN_COUNT = 1_000_000;

export function createDataAccessService(deps: CohortDeps, metrics: DataAccessMetrics): ServiceImpl<typeof DataAccessService> {
  const { log } = deps;
  return {
    async validateQuery(req) {
      return await handled(log, "ValidateQuery", {}, () => {
        const query = validateQuery(required("sql", req.sql));
        return create(ValidateQueryResponseSchema, { normalizedSql: query.normalizedSql, tables: query.tables });
      });
    },

    async getCohortStatistics(req) {
      const ids = { projectId: projectId(req.projectId), queryId: optionalId("query_id", req.queryId) };
      return await handled(log, "GetCohortStatistics", ids, async () => {
        const stats = await metrics.measureCohortQuery(() =>
          getCohortStatistics(deps, { ...ids, sql: required("sql", req.sql), minCount: minCount(req.minCount), requestedBy: optionalId("requested_by", req.requestedBy) || undefined }),
        );
        return create(GetCohortStatisticsResponseSchema, { statistics: cohortQueryOutput(stats) });
      });
    },

    async freezeCohort(req) {
      const ids = { projectId: projectId(req.projectId), queryId: optionalId("query_id", req.queryId) };
      return await handled(log, "FreezeCohort", ids, async () => {
        const counts = await freezeCohort(deps, { ...ids, sql: required("sql", req.sql), minCount: minCount(req.minCount) });
        return create(FreezeCohortResponseSchema, { cohort: freezeCohortOutput(counts) });
      });
    },

    async getFrozenCohort(req) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "GetFrozenCohort", ids, async () => {
        const status = await getFrozenCohort(deps, ids.projectId);
        return create(GetFrozenCohortResponseSchema, {
          cohort: freezeCohortOutput(status.counts),
          frozenAt: status.frozenAt.toISOString(),
          presentPersonCount: BigInt(status.presentPersonCount),
        });
      });
    },

    async *getCohortRows(req) {
      const ids = { projectId: projectId(req.projectId) };
      if (req.batchSize > MAX_BATCH_ROWS) throw new ConnectError(`batch_size must be at most ${MAX_BATCH_ROWS}`, Code.InvalidArgument);
      const started = Date.now();
      let rows = 0;
      try {
        for await (const batch of frozenCohortRows(deps, ids.projectId, req.batchSize || DEFAULT_BATCH_ROWS)) {
          rows += batch.rows.length;
          yield create(GetCohortRowsResponseSchema, { columns: batch.columns, rows: batch.rows.map((values) => ({ values })) });
        }
        log.info({ rpc: "GetCohortRows", ...ids, rows, ms: Date.now() - started }, "cohort rows served");
      } catch (e) {
        throw toConnectError(e, log, "GetCohortRows", ids);
      }
    },

    async listCohortAccessions(req) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "ListCohortAccessions", ids, async () => {
        const accessionNumbers = await listCohortAccessions(deps, ids.projectId);
        return create(ListCohortAccessionsResponseSchema, { accessionNumbers });
      });
    },

    async getQueryBudget(req) {
      const ids = { projectId: projectId(req.projectId) };
      return await handled(log, "GetQueryBudget", ids, async () => {
        const b = await deps.guard.budget(ids.projectId);
        return create(GetQueryBudgetResponseSchema, { perDay: b.perDay, used: b.used, remaining: b.remaining, resetsAt: b.resetsAt.toISOString() });
      });
    },
  };
}

/** Routes for serve(): the DataAccessService on a Connect router. */
export function dataAccessRoutes(deps: CohortDeps, metrics: DataAccessMetrics): (router: ConnectRouter) => void {
  const impl = createDataAccessService(deps, metrics);
  return (router) => router.service(DataAccessService, impl);
}

async function handled<T>(log: Logger, rpc: string, ids: Record<string, string>, work: () => T | Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    const result = await work();
    log.info({ rpc, ...ids, ms: Date.now() - started }, "request served");
    return result;
  } catch (e) {
    throw toConnectError(e, log, rpc, ids);
  }
}

/** Maps domain errors to codes; anything unexpected becomes Internal with a fixed message (details in the log). */
export function toConnectError(e: unknown, log: Logger, rpc: string, ids: Record<string, string>): ConnectError {
  const refuse = (code: Code, message: string, level: "info" | "warn" = "info", fields: Record<string, unknown> = {}, details: NonNullable<ConstructorParameters<typeof ConnectError>[3]> = []) => {
    log[level]({ rpc, ...ids, code: Code[code], ...fields }, "request refused");
    return new ConnectError(message, code, undefined, details);
  };
  if (e instanceof ConnectError) return refuse(e.code, e.rawMessage);
  if (e instanceof QueryRejectedError) {
    return refuse(Code.InvalidArgument, `query rejected (${e.rule}): ${e.message}`, "info", { rule: e.rule }, [{ desc: QueryRejectionSchema, value: { rule: e.rule } }]);
  }
  if (e instanceof PolicyDeniedError) return refuse(Code.PermissionDenied, e.message, "info", { action: e.action, ruleId: e.ruleId });
  if (e instanceof StatementTimeoutError) return refuse(Code.DeadlineExceeded, e.message);
  if (e instanceof DatabaseUnavailableError) return refuse(Code.Unavailable, e.message, "warn");
  if (e instanceof ResultTooLargeError) return refuse(Code.ResourceExhausted, e.message);
  if (e instanceof QueryBudgetSpentError) return refuse(Code.ResourceExhausted, e.message);
  // Statistics and freezes answer a data failure as suppressed; should one get here, it still shows no SQLSTATE.
  if (e instanceof DataDependentFailureError) return refuse(Code.InvalidArgument, "the query failed on the trust's data", "info", { sqlState: e.sqlState });
  if (e instanceof QueryFailedError) return refuse(Code.InvalidArgument, e.message, "info", { sqlState: e.sqlState });
  if (e instanceof CohortNotFoundError) return refuse(Code.NotFound, e.message);
  if (e instanceof CohortBelowThresholdError) return refuse(Code.FailedPrecondition, e.message);
  // Only the error's class and SQLSTATE are logged: a message could quote a value from the database.
  const err = e instanceof Error ? { name: e.name, code: (e as { code?: unknown }).code } : { name: typeof e };
  log.error({ rpc, ...ids, err }, "request failed");
  return new ConnectError("internal error", Code.Internal);
}

function required(field: string, value: string): string {
  if (value.trim() === "") throw new ConnectError(`${field} is required`, Code.InvalidArgument);
  return value;
}

function projectId(value: string): string {
  required("project_id", value);
  if (value.length > MAX_ID_LENGTH) throw new ConnectError(`project_id must be at most ${MAX_ID_LENGTH} characters`, Code.InvalidArgument);
  return value;
}

function optionalId(field: string, value: string): string {
  if (value.length > MAX_ID_LENGTH) throw new ConnectError(`${field} must be at most ${MAX_ID_LENGTH} characters`, Code.InvalidArgument);
  return value;
}

function minCount(value: number): number {
  if (value > MAX_MIN_COUNT) throw new ConnectError(`min_count must be at most ${MAX_MIN_COUNT}`, Code.InvalidArgument);
  return value;
}
