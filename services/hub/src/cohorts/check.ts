import { QueryRejectedError } from "@flip/data-access/validation/rejection.js";
import { validateQuery } from "@flip/data-access/validation/validate.js";
import { precheckProblem } from "./precheck.js";

/** A rule cohort SQL breaks, as CheckCohortQuery reports it. */
export interface CohortSqlProblem {
  rule: string;
  message: string;
  /** The hub's own pre-check fails: SubmitCohortQuery refuses the query. */
  refusedByHub: boolean;
}

/**
 * What the hub can tell about cohort SQL before anyone runs it: its own pre-check, then the trusts'
 * default validator (which stops at the first rule broken). Where both name the same rule, the
 * validator's message, the more specific one, is reported once. Advisory: each trust validates the
 * submitted query again, under its own rules.
 */
export async function checkCohortSql(sql: string): Promise<CohortSqlProblem[]> {
  const hub = await precheckProblem(sql);
  const trust = trustRuleBroken(sql);
  if (hub && trust?.rule === hub.rule) return [{ ...trust, refusedByHub: true }];
  const problems: CohortSqlProblem[] = [];
  if (hub) problems.push({ rule: hub.rule, message: `the query ${hub.message}`, refusedByHub: true });
  if (trust) problems.push({ ...trust, refusedByHub: false });
  return problems;
}

function trustRuleBroken(sql: string): { rule: string; message: string } | undefined {
  try {
    validateQuery(sql);
    return undefined;
  } catch (e) {
    if (e instanceof QueryRejectedError) return { rule: e.rule, message: e.message };
    throw e;
  }
}
