/**
 * Turns a cohort query's result into statistics that may leave the trust: a record count and one summary
 * per column, with small counts suppressed. No row-level value is ever part of the output except as a
 * category label shared by at least T records of at least T persons.
 */
import type { ResultSet } from "../execution/executor.js";
import { columnKind, isBoolean } from "./column-kinds.js";
import { suppressCategories, type CategoryCell, type CategoryCount } from "./suppress-categories.js";
import { summarizeNumbers, type NumericSummary, type NumericValue } from "./summarize-numbers.js";

/** The category label of SQL NULL. */
export const NULL_CATEGORY = "(null)";

export type ColumnStatistics =
  | { name: string; kind: "categorical"; categories: CategoryCount[]; otherCount: number; hasSuppressed: boolean }
  /** `summary` is undefined when withheld (too few values, or too few missing ones). */
  | { name: string; kind: "numeric"; summary: NumericSummary | undefined }
  /** Listed by name only: identifiers and types the trust does not summarise. */
  | { name: string; kind: "withheld"; reason: "identifier" | "unsupported_type" };

/**
 * A cohort smaller than the threshold and an empty cohort look the same: outcome "suppressed", nothing else.
 */
export type CohortStatistics =
  | { outcome: "suppressed"; threshold: number }
  | { outcome: "ok"; threshold: number; recordCount: number; columns: ColumnStatistics[] };

/** Summarises a result; `threshold` is the effective T (already the highest of trust, policy and hub). */
export function summarizeCohort(result: ResultSet, threshold: number): CohortStatistics {
  const subjectOf = subjectKey(result);
  const allSubjects = new Set(result.rows.map((r, i) => subjectOf(r, i)));
  if (result.rows.length < threshold || allSubjects.size < threshold) return { outcome: "suppressed", threshold };

  const columns = result.columns.map((column, index): ColumnStatistics => {
    const distinct = new Set(result.rows.map((r) => r[index])).size;
    const kind = columnKind(column, distinct);
    switch (kind) {
      case "identifier":
        return { name: column.name, kind: "withheld", reason: "identifier" };
      case "unsupported":
        return { name: column.name, kind: "withheld", reason: "unsupported_type" };
      case "numeric":
        return { name: column.name, kind: "numeric", summary: numericColumn(result, index, subjectOf, threshold) };
      case "categorical":
      case "date": {
        const label = kind === "date" ? yearOf : isBoolean(column) ? booleanLabel : (v: string) => v;
        return { name: column.name, kind: "categorical", ...suppressCategories(categoryCells(result, index, subjectOf, label), threshold) };
      }
    }
  });
  return { outcome: "ok", threshold, recordCount: result.rows.length, columns };
}

type SubjectOf = (row: ResultSet["rows"][number], index: number) => string;

/** Rows are grouped by person when the result carries a person id; otherwise each row stands alone. */
function subjectKey(result: ResultSet): SubjectOf {
  const personIndex = result.columns.findIndex((c) => (c.sourceColumn ?? c.name) === "person_id" || c.name === "person_id");
  if (personIndex < 0) return (_row, i) => `row:${i}`;
  return (row, i) => {
    const id = row[personIndex];
    return id === null || id === undefined ? `row:${i}` : `person:${id}`;
  };
}

function categoryCells(result: ResultSet, index: number, subjectOf: SubjectOf, label: (v: string) => string): CategoryCell[] {
  const cells = new Map<string, { count: number; subjects: Set<string> }>();
  result.rows.forEach((row, i) => {
    const raw = row[index];
    const value = raw === null || raw === undefined ? NULL_CATEGORY : label(raw);
    let cell = cells.get(value);
    if (!cell) cells.set(value, (cell = { count: 0, subjects: new Set() }));
    cell.count++;
    cell.subjects.add(subjectOf(row, i));
  });
  return [...cells].map(([value, c]) => ({ value, count: c.count, subjects: c.subjects }));
}

function numericColumn(result: ResultSet, index: number, subjectOf: SubjectOf, threshold: number): NumericSummary | undefined {
  const values: NumericValue[] = [];
  const missingSubjects = new Set<string>();
  let missingRows = 0;
  result.rows.forEach((row, i) => {
    const raw = row[index];
    const value = raw === null || raw === undefined ? NaN : Number(raw);
    if (Number.isFinite(value)) {
      values.push({ value, subject: subjectOf(row, i) });
    } else {
      missingRows++;
      missingSubjects.add(subjectOf(row, i));
    }
  });
  return summarizeNumbers(values, { rows: missingRows, subjects: missingSubjects.size }, threshold);
}

/** PostgreSQL's text form of a boolean is `t`/`f`. */
function booleanLabel(value: string): string {
  return value === "t" ? "true" : "false";
}

/** `2019-03-04`, `2019-03-04 10:00:00+00` → `2019`; BC dates and infinities keep their own label. */
function yearOf(value: string): string {
  const m = /^(\d{4,})-/.exec(value);
  if (!m) return value;
  return value.endsWith(" BC") ? `${m[1]} BC` : m[1]!;
}
