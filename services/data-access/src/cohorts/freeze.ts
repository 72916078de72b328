import { DataDependentFailureError } from "../execution/errors.js";
import { effectiveThreshold, decide, requirePermit } from "../policy/policy.js";
import { QueryRejectedError } from "../validation/rejection.js";
import { validateQuery } from "../validation/validate.js";
import type { CohortDeps } from "./deps.js";
import { CohortNotFoundError } from "./errors.js";
import { findFrozen, presentMembers, storeFrozen, type FrozenCohort } from "./frozen-store.js";
import { ownerWork } from "./local-store.js";

export interface FreezeRequest {
  projectId: string;
  queryId: string;
  sql: string;
  minCount: number;
}

/** Counts that may leave the trust: zero and `suppressed` when the cohort is below the threshold. */
export interface FrozenCohortCounts {
  personCount: number;
  /** 0 also when between 1 and T-1 studies were frozen. */
  studyCount: number;
  suppressed: boolean;
  querySha256: string;
}

export interface FrozenCohortStatus {
  counts: FrozenCohortCounts;
  frozenAt: Date;
  /** Members still present in OMOP; 0 when below the threshold. */
  presentPersonCount: number;
}

/** int2, int4, int8: person ids in text form are then always plain integers. */
const INTEGER_TYPES = new Set([21, 23, 20]);

/**
 * Freezes the project's cohort: runs the validated query and stores its distinct person ids, and the
 * accession numbers of their studies, in flip_local. Idempotent: a project keeps its first freeze.
 */
export async function freezeCohort(deps: CohortDeps, req: FreezeRequest): Promise<FrozenCohortCounts> {
  const decision = requirePermit(deps.policy, "cohort.freeze", req.projectId);
  deps.log.info({ projectId: req.projectId, queryId: req.queryId, ruleId: decision.ruleId }, "policy permits cohort freeze");
  const query = validateQuery(req.sql);
  const threshold = effectiveThreshold(deps.threshold, decision, req.minCount);

  const existing = await ownerWork(deps.owner, (c) => findFrozen(c, req.projectId));
  if (existing) {
    if (existing.querySha256 !== query.sha256) deps.log.warn({ projectId: req.projectId, queryId: req.queryId }, "cohort already frozen from another query; keeping the first");
    return countsOf(existing, Math.max(threshold, existing.threshold));
  }

  // The person_id column is checked before any row is read, so that whether a freeze is refused never
  // depends on the data.
  const columns = (await deps.executor.query(`SELECT * FROM (${query.normalizedSql}) AS cohort LIMIT 0`)).columns;
  const personColumn = columns.findIndex((c) => c.name === "person_id");
  if (personColumn < 0) {
    throw new QueryRejectedError("person_id_required", "to freeze a cohort the query must return a column named person_id");
  }
  if (!INTEGER_TYPES.has(columns[personColumn]!.typeId)) {
    throw new QueryRejectedError("person_id_required", "the person_id column must be an integer column (bigint, integer or smallint)");
  }
  const personIds = new Set<string>();
  try {
    const result = await deps.executor.query(query.normalizedSql);
    for (const row of result.rows) {
      const id = row[personColumn];
      if (id !== null && id !== undefined) personIds.add(id);
    }
  } catch (e) {
    if (!(e instanceof DataDependentFailureError)) throw e;
    // Failing on one record must look like a small cohort: freeze an empty one, which reports as suppressed.
    deps.log.info({ projectId: req.projectId, queryId: req.queryId, sqlState: e.sqlState }, "cohort query failed on the data; frozen as an empty cohort");
  }
  const { cohort, created } = await ownerWork(deps.owner, (c) =>
    storeFrozen(c, { projectId: req.projectId, queryId: req.queryId, querySha256: query.sha256, normalizedSql: query.normalizedSql, threshold }, [...personIds]),
  );
  if (created) deps.log.info({ projectId: req.projectId, queryId: req.queryId }, "cohort frozen");
  return countsOf(cohort, Math.max(threshold, cohort.threshold));
}

/** The project's frozen cohort: its counts at freeze time and how many members are still present. */
export async function getFrozenCohort(deps: CohortDeps, projectId: string): Promise<FrozenCohortStatus> {
  const { cohort, present } = await ownerWork(deps.owner, async (c) => {
    const found = await findFrozen(c, projectId);
    if (!found) throw new CohortNotFoundError(projectId);
    return { cohort: found, present: (await presentMembers(c, projectId)).length };
  });
  const threshold = Math.max(effectiveThreshold(deps.threshold, decide(deps.policy, "cohort.freeze", projectId)), cohort.threshold);
  return { counts: countsOf(cohort, threshold), frozenAt: cohort.frozenAt, presentPersonCount: present >= threshold ? present : 0 };
}

function countsOf(cohort: FrozenCohort, threshold: number): FrozenCohortCounts {
  if (cohort.personCount < threshold) return { personCount: 0, studyCount: 0, suppressed: true, querySha256: cohort.querySha256 };
  return {
    personCount: cohort.personCount,
    studyCount: cohort.studyCount >= threshold ? cohort.studyCount : 0,
    suppressed: false,
    querySha256: cohort.querySha256,
  };
}
