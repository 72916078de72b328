import { DataDependentFailureError } from "../execution/errors.js";
import type { ResultSet } from "../execution/executor.js";
import { effectiveThreshold, requirePermit } from "../policy/policy.js";
import { summarizeCohort, type CohortStatistics } from "../statistics/summarize-cohort.js";
import { validateQuery } from "../validation/validate.js";
import type { CohortDeps } from "./deps.js";

export interface CohortStatisticsRequest {
  projectId: string;
  queryId: string;
  sql: string;
  /** The hub's threshold; only a higher one than the trust's has an effect. */
  minCount: number;
  /** Who asked, as the hub names its callers; for the ledger. */
  requestedBy?: string;
}

/**
 * Validates and runs a cohort query and returns its suppressed statistics. Two other outcomes look
 * exactly like a suppressed cohort, because each could otherwise tell a fact about one patient: the query
 * failing on the data, and the guard finding that it differences a recent query of the same project.
 */
export async function getCohortStatistics(deps: CohortDeps, req: CohortStatisticsRequest): Promise<CohortStatistics> {
  const decision = requirePermit(deps.policy, "cohort.statistics", req.projectId);
  deps.log.info({ projectId: req.projectId, queryId: req.queryId, ruleId: decision.ruleId }, "policy permits cohort statistics");
  const query = validateQuery(req.sql);
  const threshold = effectiveThreshold(deps.threshold, decision, req.minCount);
  await deps.guard.assertBudgetLeft({ projectId: req.projectId, queryId: req.queryId, userId: req.requestedBy });
  let result: ResultSet | undefined;
  try {
    result = await deps.executor.query(query.normalizedSql);
  } catch (e) {
    if (!(e instanceof DataDependentFailureError)) throw e;
    deps.log.info({ projectId: req.projectId, queryId: req.queryId, sqlState: e.sqlState }, "cohort query failed on the data; answered as suppressed");
  }
  const stats = result ? summarizeCohort(result, threshold) : undefined;
  const verdict = await deps.guard.record({
    projectId: req.projectId,
    queryId: req.queryId,
    userId: req.requestedBy,
    fingerprint: query.fingerprint,
    querySha256: query.sha256,
    wouldAnswer: stats?.outcome === "ok",
    personIds: result ? personIds(result) : undefined,
    threshold,
    failedOnData: result === undefined,
  });
  if (verdict.rule && verdict.rule !== "data_error") deps.log.info({ projectId: req.projectId, queryId: req.queryId, rule: verdict.rule }, "differencing guard suppressed a cohort answer");
  if (!stats || verdict.suppress) return { outcome: "suppressed", threshold };
  return stats;
}

/** The result's person ids, when it has a person_id column. */
function personIds(result: ResultSet): string[] | undefined {
  const column = result.columns.findIndex((c) => c.name === "person_id");
  if (column < 0) return undefined;
  return result.rows.map((row) => row[column]).filter((id): id is string => id !== null && id !== undefined);
}
