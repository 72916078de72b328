import { hasSqlDetails, loadModule, parseSync, type ParseResult } from "libpg-query";
import { QueryRejectedError } from "./rejection.js";

// The parser is PostgreSQL's own, compiled to WASM; it must be instantiated once before use.
await loadModule();

/** Parses SQL with the PostgreSQL 18 grammar; a syntax error becomes a `parse_error` rejection. */
export function parseSql(sql: string): ParseResult {
  try {
    return parseSync(sql);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const at = hasSqlDetails(e) && e.sqlDetails?.cursorPosition !== undefined ? ` (at character ${e.sqlDetails.cursorPosition + 1})` : "";
    throw new QueryRejectedError("parse_error", `the query is not valid PostgreSQL: ${message}${at}`, { cause: e });
  }
}
