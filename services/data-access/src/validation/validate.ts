/**
 * Cohort SQL validation: one parse with PostgreSQL's own parser, the trust's rules applied to the tree,
 * and the query re-emitted from the validated tree. There is no keyword denylist: the parse tree is the
 * only thing inspected, so comments, quoting and dollar-quoting cannot hide anything from it.
 */
import { createHash } from "node:crypto";
import { fingerprintSync, type Node, type ParseResult, type SelectStmt } from "libpg-query";
import { emitCohortSelect } from "./emit.js";
import { parseSql } from "./parse.js";
import { QueryRejectedError } from "./rejection.js";

export const MAX_QUERY_LENGTH = 10_240;

export interface ValidatedQuery {
  /** The query re-emitted from its validated tree, every table pinned to `omop`. This is what runs. */
  normalizedSql: string;
  /** OMOP tables read, qualified (`omop.person`), sorted. */
  tables: string[];
  /** Lower-case hex SHA-256 of normalizedSql. */
  sha256: string;
  /** PostgreSQL's query fingerprint: equal for queries that differ only in their literals. */
  fingerprint: string;
}

const WRITES: Readonly<Record<string, string>> = {
  InsertStmt: "INSERT",
  UpdateStmt: "UPDATE",
  DeleteStmt: "DELETE",
  MergeStmt: "MERGE",
};

const STATEMENT_NAMES: Readonly<Record<string, string>> = {
  CopyStmt: "COPY",
  ExplainStmt: "EXPLAIN",
  VariableSetStmt: "SET",
  VariableShowStmt: "SHOW",
  TransactionStmt: "transaction control",
  DoStmt: "DO",
  CallStmt: "CALL",
  ListenStmt: "LISTEN",
  NotifyStmt: "NOTIFY",
  UnlistenStmt: "UNLISTEN",
  PrepareStmt: "PREPARE",
  ExecuteStmt: "EXECUTE",
  DeallocateStmt: "DEALLOCATE",
  DeclareCursorStmt: "DECLARE CURSOR",
  FetchStmt: "FETCH",
  ClosePortalStmt: "CLOSE",
  LockStmt: "LOCK",
  VacuumStmt: "VACUUM/ANALYZE",
  TruncateStmt: "TRUNCATE",
  GrantStmt: "GRANT/REVOKE",
  CreateTableAsStmt: "CREATE TABLE AS",
  DiscardStmt: "DISCARD",
  LoadStmt: "LOAD",
};

function statementName(kind: string): string {
  return (
    WRITES[kind] ??
    STATEMENT_NAMES[kind] ??
    kind
      .replace(/Stmt$/, "")
      .replace(/([a-z])([A-Z])/g, "$1 $2")
      .toUpperCase()
  );
}

export interface ValidateOptions {
  /** Re-validating a stored normalized query, which can be longer than the text it came from, lifts the cap. */
  maxLength?: number;
}

/** Checks a cohort query against the trust's rules; throws QueryRejectedError naming the broken rule. */
export function validateQuery(sql: string, opts: ValidateOptions = {}): ValidatedQuery {
  const maxLength = opts.maxLength ?? MAX_QUERY_LENGTH;
  if (sql.length > maxLength) {
    throw new QueryRejectedError("max_length", `the query is ${sql.length} characters long; the limit is ${maxLength}`);
  }
  if (sql.trim() === "") throw new QueryRejectedError("single_statement", "the query is empty");
  try {
    return validateParsed(parseSql(sql), sql);
  } catch (e) {
    // The tree is walked recursively; a pathologically nested expression exhausts the stack first.
    if (e instanceof RangeError) throw new QueryRejectedError("unsupported_syntax", "the query is nested too deeply", { cause: e });
    throw e;
  }
}

function validateParsed(parsed: ParseResult, sql: string): ValidatedQuery {
  const stmts = parsed.stmts ?? [];
  if (stmts.length !== 1) {
    throw new QueryRejectedError("single_statement", stmts.length === 0 ? "the query is empty" : `the query has ${stmts.length} statements; send exactly one SELECT`);
  }
  const write = findWrite(stmts[0]!.stmt);
  if (write) throw new QueryRejectedError("no_writes", `${statementName(write)} is not allowed: cohort queries may only read`);
  const [kind, body] = Object.entries(stmts[0]!.stmt ?? {})[0] ?? ["empty", undefined];
  if (kind !== "SelectStmt") {
    throw new QueryRejectedError("select_only", `${statementName(kind)} is not allowed: a cohort query must be a single SELECT`);
  }
  const select = body as SelectStmt;
  const emitted = emitCohortSelect(select, sql);
  assertFaithful(emitted.sql, select);
  return {
    normalizedSql: emitted.sql,
    tables: emitted.tables,
    sha256: createHash("sha256").update(emitted.sql).digest("hex"),
    fingerprint: fingerprintSync(emitted.sql),
  };
}

/** The first INSERT/UPDATE/DELETE/MERGE anywhere in the tree (e.g. inside a WITH), if any. */
function findWrite(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const item of node) {
      const found = findWrite(item);
      if (found) return found;
    }
    return undefined;
  }
  if (node === null || typeof node !== "object") return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (key in WRITES) return key;
    const found = findWrite(value);
    if (found) return found;
  }
  return undefined;
}

/** Parse-tree fields that record where in the text a node was; they differ between input and output. */
const POSITION_FIELDS = new Set(["location", "stmt_location", "stmt_len", "rexpr_list_start", "rexpr_list_end", "list_start", "list_end", "name_location"]);

function withoutPositions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutPositions);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (!POSITION_FIELDS.has(key)) out[key] = withoutPositions((value as Record<string, unknown>)[key]);
  }
  return out;
}

/**
 * Proves the emitted SQL means exactly the validated tree: it must parse back to the same tree. Anything
 * the emitter dropped or spelled differently (a field it does not know) fails here instead of running.
 */
function assertFaithful(sql: string, validated: SelectStmt): void {
  let reparsed: ParseResult;
  try {
    reparsed = parseSql(sql);
  } catch (e) {
    throw new QueryRejectedError("unsupported_syntax", "the trust could not re-create this query from its parse tree; please simplify it", { cause: e });
  }
  const stmt: Node | undefined = reparsed.stmts?.length === 1 ? reparsed.stmts[0]!.stmt : undefined;
  const expected = JSON.stringify(withoutPositions({ SelectStmt: validated }));
  if (JSON.stringify(withoutPositions(stmt)) !== expected) {
    throw new QueryRejectedError("unsupported_syntax", "the trust could not re-create this query exactly from its parse tree; please simplify it");
  }
}
