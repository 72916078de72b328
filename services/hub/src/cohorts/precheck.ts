import { parse } from "libpg-query";
import { InvalidInputError } from "../domain/errors.js";

export const MAX_COHORT_SQL_LENGTH = 10_240;

/**
 * Fast feedback at the hub: non-empty, within the length cap, one statement that PostgreSQL can parse.
 * Deliberately weaker than the trust's validator, which is the authority (each trust checks again).
 */
export async function precheckCohortSql(sql: string): Promise<string> {
  const text = sql.trim();
  if (text === "") throw new InvalidInputError("sql", "is empty; write a SELECT over the omop schema");
  if (text.length > MAX_COHORT_SQL_LENGTH) throw new InvalidInputError("sql", `is ${text.length} characters; the limit is ${MAX_COHORT_SQL_LENGTH}`);
  let tree: { stmts?: unknown[] };
  try {
    tree = (await parse(text)) as { stmts?: unknown[] };
  } catch (e) {
    throw new InvalidInputError("sql", `does not parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  if ((tree.stmts?.length ?? 0) !== 1) throw new InvalidInputError("sql", "must be exactly one statement");
  return text;
}
