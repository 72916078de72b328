import { effectiveThreshold, requirePermit, type PolicyAction } from "../policy/policy.js";
import { validateQuery } from "../validation/validate.js";
import type { CohortDeps } from "./deps.js";
import { CohortBelowThresholdError, CohortNotFoundError } from "./errors.js";
import { findFrozen, presentAccessions, presentMembers, type FrozenCohort } from "./frozen-store.js";
import { ownerWork } from "./local-store.js";
import { jsonValue } from "./row-values.js";

export interface CohortRowBatch {
  columns: string[];
  /** Values as JSON text, in `columns` order. */
  rows: string[][];
}

export const DEFAULT_BATCH_ROWS = 1_000;
export const MAX_BATCH_ROWS = 10_000;

/**
 * The frozen cohort, checked for this serve: the policy permits the action, a cohort exists, and at least
 * T of its members are still present in OMOP (T re-evaluated now, never below the freeze's).
 */
async function servableCohort(deps: CohortDeps, action: PolicyAction, projectId: string): Promise<{ cohort: FrozenCohort; members: string[] }> {
  const decision = requirePermit(deps.policy, action, projectId);
  deps.log.info({ projectId, action, ruleId: decision.ruleId }, "policy permits row-level access");
  const { cohort, members } = await ownerWork(deps.owner, async (c) => {
    const found = await findFrozen(c, projectId);
    if (!found) throw new CohortNotFoundError(projectId);
    return { cohort: found, members: await presentMembers(c, projectId) };
  });
  if (members.length < Math.max(effectiveThreshold(deps.threshold, decision), cohort.threshold)) throw new CohortBelowThresholdError();
  return { cohort, members };
}

/**
 * Streams the frozen cohort's rows: the frozen query re-run (re-validated) on today's OMOP data, restricted
 * to frozen members still present. Checks happen before the first batch, so a refusal carries no rows.
 */
export async function* frozenCohortRows(deps: CohortDeps, projectId: string, batchSize = DEFAULT_BATCH_ROWS): AsyncGenerator<CohortRowBatch> {
  const { cohort, members } = await servableCohort(deps, "cohort.rows", projectId);
  const query = validateQuery(cohort.normalizedSql, { maxLength: Number.POSITIVE_INFINITY });
  const sql = `SELECT cohort.* FROM (${query.normalizedSql}) AS cohort WHERE cohort.person_id = ANY($1::bigint[])`;
  let sent = false;
  for await (const batch of deps.executor.batches(sql, [members], Math.min(MAX_BATCH_ROWS, Math.max(1, batchSize)))) {
    if (sent && batch.rows.length === 0) continue;
    sent = true;
    yield {
      columns: batch.columns.map((c) => c.name),
      rows: batch.rows.map((row) => row.map((v, i) => jsonValue(v, batch.columns[i]!.typeId))),
    };
  }
}

/** Accession numbers of the frozen cohort's studies, for members still present. */
export async function listCohortAccessions(deps: CohortDeps, projectId: string): Promise<string[]> {
  await servableCohort(deps, "cohort.accessions", projectId);
  return await ownerWork(deps.owner, (c) => presentAccessions(c, projectId));
}
