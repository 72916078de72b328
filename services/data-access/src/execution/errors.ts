/**
 * Failures of running a cohort query. PostgreSQL's own messages are passed on only where they can name
 * nothing but the query's own identifiers; data errors can quote a patient's value, so theirs are withheld.
 */

/** The query ran past the trust's statement timeout. */
export class StatementTimeoutError extends Error {
  override readonly name = "StatementTimeoutError";
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`the query ran longer than the trust's ${formatDuration(timeoutMs)} limit; narrow it (fewer tables, a tighter WHERE) or ask the trust to raise the limit`, options);
  }
}

/** 30000 → "30 s", 1500 → "1500 ms". */
function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * The query failed while reading rows. Whether it fails can depend on one record (a division by zero, a
 * cast or an overflow reached only for some rows), so the failure itself is a fact about the data: callers
 * answer it exactly like a suppressed cohort. `sqlState` is for the trust's own logs only.
 */
export class DataDependentFailureError extends Error {
  override readonly name = "DataDependentFailureError";
  constructor(
    readonly sqlState: string,
    options?: { cause?: unknown },
  ) {
    super("the query failed while reading the trust's data", options);
  }
}

/** The OMOP database could not be reached or dropped the connection. */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
  constructor(options?: { cause?: unknown }) {
    super("the OMOP database is unavailable", options);
  }
}

/** The query returned more rows than the trust processes for one request. */
export class ResultTooLargeError extends Error {
  override readonly name = "ResultTooLargeError";
  constructor(readonly maxRows: number) {
    super(`the query returned more than ${maxRows} rows; aggregate or filter in SQL`);
  }
}

/** PostgreSQL refused or failed the query; `message` is safe to show to the researcher. */
export class QueryFailedError extends Error {
  override readonly name = "QueryFailedError";
  constructor(
    readonly sqlState: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The database refused to write or to touch something the reader role may not see. */
  get refusedByDatabase(): boolean {
    return this.sqlState === "25006" || this.sqlState === "42501";
  }
}

const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH", "EPIPE", "EAI_AGAIN"]);

/** Admin shutdown, crash shutdown, cannot connect now, too many connections. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);

/** Whether an error means the connection itself is unusable (so it must not go back to the pool). */
export function isConnectionFailure(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string") return CONNECTION_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08");
  // node-postgres reports a dropped socket as a plain Error without a code.
  return e instanceof Error && /Connection terminated|connection timeout|Client has encountered a connection error/i.test(e.message);
}

/**
 * An error raised while rows were being read (after the plan was made): a timeout and a lost connection keep
 * their meaning, anything else may depend on the data and becomes DataDependentFailureError.
 */
export function toReadingError(e: unknown, timeoutMs: number): Error {
  const typed = toExecutionError(e, timeoutMs);
  if (typed instanceof QueryFailedError) return new DataDependentFailureError(typed.sqlState, { cause: e });
  return typed;
}

/** Turns a node-postgres error into one of the typed errors above. */
export function toExecutionError(e: unknown, timeoutMs: number): Error {
  if (
    e instanceof StatementTimeoutError ||
    e instanceof DatabaseUnavailableError ||
    e instanceof ResultTooLargeError ||
    e instanceof QueryFailedError ||
    e instanceof DataDependentFailureError
  ) {
    return e;
  }
  if (isConnectionFailure(e)) return new DatabaseUnavailableError({ cause: e });
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  if (typeof code !== "string") return new QueryFailedError("XX000", "the query failed", { cause: e });
  if (code === "57014") return new StatementTimeoutError(timeoutMs, { cause: e });
  if (code === "25006") return new QueryFailedError(code, "the database refused to write: cohort queries run read-only", { cause: e });
  // Syntax, undefined objects, type mismatches and permissions: the message names only the query's identifiers.
  if (code.startsWith("42")) return new QueryFailedError(code, `the query failed: ${message}`, { cause: e });
  if (code.startsWith("22")) {
    return new QueryFailedError(code, `the query failed on a data error (SQLSTATE ${code}); the database's message is withheld because it can quote record values`, { cause: e });
  }
  return new QueryFailedError(code, `the query failed (SQLSTATE ${code})`, { cause: e });
}
