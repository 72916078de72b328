import { parse } from "libpg-query";
import { InvalidInputError } from "../domain/errors.js";

export const MAX_COHORT_SQL_LENGTH = 10_240;

/** What the pre-check found wrong, under the id a trust gives the same rule, and the message (after "sql: "). */
export interface PrecheckProblem {
  rule: "single_statement" | "max_length" | "parse_error";
  message: string;
}

/**
 * Fast feedback at the hub: non-empty, within the length cap, one statement that PostgreSQL can parse.
 * Deliberately weaker than the trust's validator, which is the authority (each trust checks again).
 * Returns the first problem, or undefined when the SQL passes.
 */
export async function precheckProblem(sql: string): Promise<PrecheckProblem | undefined> {
  const text = sql.trim();
  if (text === "") return { rule: "single_statement", message: "is empty; write a SELECT over the omop schema" };
  if (text.length > MAX_COHORT_SQL_LENGTH) return { rule: "max_length", message: `is ${text.length} characters; the limit is ${MAX_COHORT_SQL_LENGTH}` };
  let tree: { stmts?: unknown[] };
  try {
    tree = (await parse(text)) as { stmts?: unknown[] };
  } catch (e) {
    return { rule: "parse_error", message: `does not parse: ${e instanceof Error ? e.message : String(e)}` };
  }
  if ((tree.stmts?.length ?? 0) !== 1) return { rule: "single_statement", message: "must be exactly one statement" };
  return undefined;
}

/** The pre-checked SQL (trimmed); InvalidInputError on the field `sql` when the pre-check fails. */
export async function precheckCohortSql(sql: string): Promise<string> {
  const problem = await precheckProblem(sql);
  if (problem) throw new InvalidInputError("sql", problem.message);
  return sql.trim();
}
