/**
 * How each result column is summarised. Identifiers are never enumerated; dates are bucketed to the
 * year (a full date is a quasi-identifier); types we do not understand are withheld, not guessed at.
 */
import type { ResultColumn } from "../execution/executor.js";

export type ColumnKind = "categorical" | "numeric" | "date" | "identifier" | "unsupported";

/** PostgreSQL type OIDs (pg_type.oid, stable across releases). */
const TYPE = {
  bool: 16,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
} as const;

const TEXT_TYPES = new Set<number>([TYPE.bool, TYPE.char, TYPE.name, TYPE.text, TYPE.bpchar, TYPE.varchar]);
const INTEGER_TYPES = new Set<number>([TYPE.int2, TYPE.int4, TYPE.int8]);
const FRACTIONAL_TYPES = new Set<number>([TYPE.float4, TYPE.float8, TYPE.numeric]);
const DATE_TYPES = new Set<number>([TYPE.date, TYPE.timestamp, TYPE.timestamptz]);

/** Integer columns with at most this many distinct values are counted per value (e.g. a 0/1 flag). */
const LOW_CARDINALITY = 10;

/** OMOP columns that identify a person, a record or a file rather than describe one. */
const IDENTIFYING_COLUMNS = new Set(["person_source_value", "provider_source_value", "care_site_source_value", "wadors_uri", "local_path", "lot_number"]);

/**
 * Record keys (`person_id`, `visit_occurrence_id`, …), accession numbers and DICOM UIDs. Concept ids are
 * codes shared by many persons, so `*_concept_id` is not an identifier.
 */
function isIdentifierName(name: string): boolean {
  const n = name.toLowerCase();
  return IDENTIFYING_COLUMNS.has(n) || (n.endsWith("_id") && !n.endsWith("_concept_id")) || n === "id" || n.includes("accession") || n.endsWith("_uid");
}

export function isBoolean(column: ResultColumn): boolean {
  return column.typeId === TYPE.bool;
}

export function columnKind(column: ResultColumn, distinctValues: number): ColumnKind {
  if (isIdentifierName(column.name) || (column.sourceColumn !== undefined && isIdentifierName(column.sourceColumn))) return "identifier";
  if (TEXT_TYPES.has(column.typeId)) return "categorical";
  if (DATE_TYPES.has(column.typeId)) return "date";
  if (INTEGER_TYPES.has(column.typeId)) {
    const concept = (column.sourceColumn ?? column.name).toLowerCase().endsWith("_concept_id") || column.name.toLowerCase().endsWith("_concept_id");
    return concept || distinctValues <= LOW_CARDINALITY ? "categorical" : "numeric";
  }
  if (FRACTIONAL_TYPES.has(column.typeId)) return "numeric";
  return "unsupported";
}
