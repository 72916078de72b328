import test from "ava";
import type { ResultColumn, ResultSet } from "../execution/executor.js";
import { NULL_CATEGORY, summarizeCohort } from "./summarize-cohort.js";

const INT4 = 23;
const TEXT = 25;
const BOOL = 16;
const DATE = 1082;
const NUMERIC = 1700;

function result(columns: ResultColumn[], rows: (string | null)[][]): ResultSet {
  return { columns, rows };
}

/** n persons: id, gender concept, a diagnosis flag, an admission date and a lab value. */
function cohort(n: number): ResultSet {
  return result(
    [
      { name: "person_id", typeId: INT4, sourceColumn: "person_id" },
      { name: "gender_concept_id", typeId: INT4 },
      { name: "diabetic", typeId: BOOL },
      { name: "admitted", typeId: DATE },
      { name: "hba1c", typeId: NUMERIC },
    ],
    Array.from({ length: n }, (_, i) => [String(1000 + i), i % 2 ? "8507" : "8532", i % 3 ? "f" : "t", `20${10 + (i % 4)}-0${1 + (i % 9)}-15`, (5 + (i % 30) / 10).toFixed(1)]),
  );
}

test("a cohort below the threshold is reported exactly as an empty one: suppressed, nothing else", (t) => {
  const small = summarizeCohort(cohort(9), 10);
  const empty = summarizeCohort(cohort(0), 10);
  t.deepEqual(small, { outcome: "suppressed", threshold: 10 });
  t.deepEqual(small, empty);
});

test("a cohort of rows from fewer than T persons is suppressed", (t) => {
  const rows = Array.from({ length: 40 }, (_, i) => [String(i % 4), "8532"]);
  const out = summarizeCohort(result([{ name: "person_id", typeId: INT4 }, { name: "gender_concept_id", typeId: INT4 }], rows), 10);
  t.is(out.outcome, "suppressed");
});

test("identifiers are listed by name only, even when aliased", (t) => {
  const rows = Array.from({ length: 30 }, (_, i) => [String(i), `ACC${i}`, String(i * 7)]);
  const out = summarizeCohort(
    result(
      [
        { name: "pid", typeId: INT4, sourceColumn: "person_id" },
        { name: "accession_id", typeId: TEXT },
        { name: "visit_occurrence_id", typeId: INT4 },
      ],
      rows,
    ),
    10,
  );
  t.is(out.outcome, "ok");
  if (out.outcome !== "ok") return;
  t.deepEqual(
    out.columns.map((c) => c.kind),
    ["withheld", "withheld", "withheld"],
  );
});

test("concept ids, booleans and years of dates are counted per category", (t) => {
  const out = summarizeCohort(cohort(120), 10);
  if (out.outcome !== "ok") return t.fail("expected statistics");
  t.is(out.recordCount, 120);
  const byName = Object.fromEntries(out.columns.map((c) => [c.name, c]));
  t.deepEqual(byName.gender_concept_id, {
    name: "gender_concept_id",
    kind: "categorical",
    categories: [
      { value: "8507", count: 60 },
      { value: "8532", count: 60 },
    ],
    otherCount: 0,
    hasSuppressed: false,
  });
  t.deepEqual(byName.diabetic, {
    name: "diabetic",
    kind: "categorical",
    categories: [
      { value: "false", count: 80 },
      { value: "true", count: 40 },
    ],
    otherCount: 0,
    hasSuppressed: false,
  });
  const admitted = byName.admitted;
  t.true(admitted?.kind === "categorical" && admitted.categories.every((c) => /^20(10|11|12|13)$/.test(c.value)));
  t.is(byName.hba1c?.kind, "numeric");
});

test("no row-level value leaves: a column of distinct values shows no category at all", (t) => {
  const rows = Array.from({ length: 50 }, (_, i) => [String(i), `note about patient ${i}`, null]);
  const out = summarizeCohort(
    result(
      [
        { name: "person_id", typeId: INT4 },
        { name: "free_text", typeId: TEXT },
        { name: "always_null", typeId: TEXT },
      ],
      rows,
    ),
    10,
  );
  if (out.outcome !== "ok") return t.fail("expected statistics");
  t.deepEqual(out.columns[1], { name: "free_text", kind: "categorical", categories: [], otherCount: 50, hasSuppressed: true });
  t.deepEqual(out.columns[2], { name: "always_null", kind: "categorical", categories: [{ value: NULL_CATEGORY, count: 50 }], otherCount: 0, hasSuppressed: false });
  t.false(JSON.stringify(out).includes("note about patient"));
});

test("a low-cardinality integer is categorical and a wide one is numeric", (t) => {
  const rows = Array.from({ length: 60 }, (_, i) => [String(i % 3), String(1920 + i)]);
  const out = summarizeCohort(
    result(
      [
        { name: "visits", typeId: INT4 },
        { name: "year_of_birth", typeId: INT4 },
      ],
      rows,
    ),
    10,
  );
  if (out.outcome !== "ok") return t.fail("expected statistics");
  t.is(out.columns[0]?.kind, "categorical");
  t.is(out.columns[1]?.kind, "numeric");
});
