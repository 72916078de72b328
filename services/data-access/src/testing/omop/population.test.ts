import test from "ava";
import { OMOP_TABLES as VALIDATOR_TABLES } from "../../validation/omop-tables.js";
import { ALL_CONCEPTS, CONDITION } from "./concepts.js";
import { generatePopulation, type OmopRows } from "./population.js";
import { PROFILES } from "./profiles.js";
import { OMOP_TABLES } from "./schema.js";

const north = generatePopulation({ seed: 42, persons: 3000, profile: PROFILES.north! });
const south = generatePopulation({ seed: 42, persons: 3000, profile: PROFILES.south! });

/** Share of persons with a condition. */
function prevalence(rows: OmopRows, conceptId: number): number {
  const persons = new Set(rows.condition_occurrence!.filter((r) => r.condition_concept_id === conceptId).map((r) => r.person_id));
  return persons.size / rows.person!.length;
}

const meanAge = (rows: OmopRows) => rows.person!.reduce((s, p) => s + (2024 - Number(p.year_of_birth)), 0) / rows.person!.length;

test("the same seed and profile always give the same trust", (t) => {
  const again = generatePopulation({ seed: 42, persons: 3000, profile: PROFILES.north! });
  t.deepEqual(again, north);
});

test("a different seed gives a different trust", (t) => {
  const other = generatePopulation({ seed: 43, persons: 300, profile: PROFILES.north! });
  const first = generatePopulation({ seed: 42, persons: 300, profile: PROFILES.north! });
  t.notDeepEqual(other.person, first.person);
});

test("profiles differ in case mix: north is older with more diabetes, south younger with more asthma", (t) => {
  t.true(meanAge(north) > meanAge(south) + 10);
  t.true(prevalence(north, CONDITION.type2Diabetes.id) > 2 * prevalence(south, CONDITION.type2Diabetes.id));
  t.true(prevalence(south, CONDITION.asthma.id) > 1.5 * prevalence(north, CONDITION.asthma.id));
});

test("accession numbers carry the trust's code and are unique", (t) => {
  const accessions = north.image_occurrence!.map((r) => String(r.accession_id));
  t.true(accessions.length > 500);
  t.true(accessions.every((a) => /^ACCNORTH\d{6}$/.test(a)));
  t.is(new Set(accessions).size, accessions.length);
  t.deepEqual([...new Set(north.image_occurrence!.map((r) => String(r.modality_source_value)))].sort(), ["CR", "CT", "MR"]);
});

test("every concept id used in the data has a row in the concept table", (t) => {
  const known = new Set(ALL_CONCEPTS.map((c) => c.id));
  const used = new Set<number>();
  for (const [table, rows] of Object.entries(north)) {
    if (table === "concept") continue;
    for (const row of rows) for (const [col, v] of Object.entries(row)) if (col.endsWith("_concept_id") && typeof v === "number" && v !== 0) used.add(v);
  }
  t.deepEqual([...used].filter((id) => !known.has(id)), []);
});

test("rows only use columns of their table, and every table is one the validator knows as OMOP", (t) => {
  for (const table of OMOP_TABLES) {
    t.true(VALIDATOR_TABLES.has(table.name), table.name);
    const columns = new Set(table.columns.map((c) => c.name));
    const stray = new Set((north[table.name] ?? []).flatMap((r) => Object.keys(r).filter((k) => !columns.has(k))));
    t.deepEqual([...stray], [], table.name);
  }
});
