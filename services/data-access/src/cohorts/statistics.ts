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
}

/** Validates and runs a cohort query and returns its suppressed statistics. */
export async function getCohortStatistics(deps: CohortDeps, req: CohortStatisticsRequest): Promise<CohortStatistics> {
  const decision = requirePermit(deps.policy, "cohort.statistics", req.projectId);
  deps.log.info({ projectId: req.projectId, queryId: req.queryId, ruleId: decision.ruleId }, "policy permits cohort statistics");
  const query = validateQuery(req.sql);
  const threshold = effectiveThreshold(deps.threshold, decision, req.minCount);
  const result = await deps.executor.query(query.normalizedSql);
  return summarizeCohort(result, threshold);
}
