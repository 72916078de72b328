/**
 * Row values for GetCohortRows: each value as JSON text, from PostgreSQL's text output. Numbers stay
 * numbers without a round trip through float64, so bigint and numeric keep every digit.
 */
const NUMERIC_TYPES = new Set([20, 21, 23, 700, 701, 1700]);
const BOOL = 16;
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

export function jsonValue(text: string | null | undefined, typeId: number): string {
  if (text === null || text === undefined) return "null";
  if (NUMERIC_TYPES.has(typeId) && JSON_NUMBER.test(text)) return text;
  if (typeId === BOOL) return text === "t" ? "true" : "false";
  return JSON.stringify(text);
}
