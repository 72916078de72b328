/**
 * The OMOP CDM 5.4 tables FLIP's synthetic trusts use, in schema `omop`, plus the MI-CDM
 * `image_occurrence` table with FLIP's `accession_id` (the join key to the PACS). Column names and types
 * follow the CDM 5.4 PostgreSQL DDL; only the tables the generator fills are created.
 */
import pg from "pg";
import { grantCohortReader, OMOP_SCHEMA, READER_ROLE } from "../../execution/reader-role.js";

export interface OmopColumn {
  name: string;
  /** PostgreSQL type as in the CDM DDL, e.g. `integer`, `varchar(50)`, `date`. */
  type: string;
  notNull?: boolean;
}

export interface OmopTable {
  name: string;
  columns: OmopColumn[];
  primaryKey?: string;
  /** Columns with a plain b-tree index (what cohort queries filter and join on). */
  indexes: string[];
}

const col = (name: string, type: string, notNull = false): OmopColumn => ({ name, type, notNull });

export const OMOP_TABLES: readonly OmopTable[] = [
  {
    name: "concept",
    primaryKey: "concept_id",
    indexes: ["concept_code", "vocabulary_id"],
    columns: [
      col("concept_id", "integer", true),
      col("concept_name", "varchar(255)", true),
      col("domain_id", "varchar(20)", true),
      col("vocabulary_id", "varchar(20)", true),
      col("concept_class_id", "varchar(20)", true),
      col("standard_concept", "varchar(1)"),
      col("concept_code", "varchar(50)", true),
      col("valid_start_date", "date", true),
      col("valid_end_date", "date", true),
      col("invalid_reason", "varchar(1)"),
    ],
  },
  {
    name: "person",
    primaryKey: "person_id",
    indexes: ["gender_concept_id", "year_of_birth"],
    columns: [
      col("person_id", "integer", true),
      col("gender_concept_id", "integer", true),
      col("year_of_birth", "integer", true),
      col("month_of_birth", "integer"),
      col("day_of_birth", "integer"),
      col("birth_datetime", "timestamp"),
      col("race_concept_id", "integer", true),
      col("ethnicity_concept_id", "integer", true),
      col("location_id", "integer"),
      col("provider_id", "integer"),
      col("care_site_id", "integer"),
      col("person_source_value", "varchar(50)"),
      col("gender_source_value", "varchar(50)"),
      col("gender_source_concept_id", "integer"),
      col("race_source_value", "varchar(50)"),
      col("race_source_concept_id", "integer"),
      col("ethnicity_source_value", "varchar(50)"),
      col("ethnicity_source_concept_id", "integer"),
    ],
  },
  {
    name: "observation_period",
    primaryKey: "observation_period_id",
    indexes: ["person_id"],
    columns: [
      col("observation_period_id", "integer", true),
      col("person_id", "integer", true),
      col("observation_period_start_date", "date", true),
      col("observation_period_end_date", "date", true),
      col("period_type_concept_id", "integer", true),
    ],
  },
  {
    name: "visit_occurrence",
    primaryKey: "visit_occurrence_id",
    indexes: ["person_id", "visit_concept_id"],
    columns: [
      col("visit_occurrence_id", "integer", true),
      col("person_id", "integer", true),
      col("visit_concept_id", "integer", true),
      col("visit_start_date", "date", true),
      col("visit_start_datetime", "timestamp"),
      col("visit_end_date", "date", true),
      col("visit_end_datetime", "timestamp"),
      col("visit_type_concept_id", "integer", true),
      col("provider_id", "integer"),
      col("care_site_id", "integer"),
      col("visit_source_value", "varchar(50)"),
      col("visit_source_concept_id", "integer"),
      col("admitted_from_concept_id", "integer"),
      col("admitted_from_source_value", "varchar(50)"),
      col("discharged_to_concept_id", "integer"),
      col("discharged_to_source_value", "varchar(50)"),
      col("preceding_visit_occurrence_id", "integer"),
    ],
  },
  {
    name: "condition_occurrence",
    primaryKey: "condition_occurrence_id",
    indexes: ["person_id", "condition_concept_id"],
    columns: [
      col("condition_occurrence_id", "integer", true),
      col("person_id", "integer", true),
      col("condition_concept_id", "integer", true),
      col("condition_start_date", "date", true),
      col("condition_start_datetime", "timestamp"),
      col("condition_end_date", "date"),
      col("condition_end_datetime", "timestamp"),
      col("condition_type_concept_id", "integer", true),
      col("condition_status_concept_id", "integer"),
      col("stop_reason", "varchar(20)"),
      col("provider_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("visit_detail_id", "integer"),
      col("condition_source_value", "varchar(50)"),
      col("condition_source_concept_id", "integer"),
      col("condition_status_source_value", "varchar(50)"),
    ],
  },
  {
    name: "drug_exposure",
    primaryKey: "drug_exposure_id",
    indexes: ["person_id", "drug_concept_id"],
    columns: [
      col("drug_exposure_id", "integer", true),
      col("person_id", "integer", true),
      col("drug_concept_id", "integer", true),
      col("drug_exposure_start_date", "date", true),
      col("drug_exposure_start_datetime", "timestamp"),
      col("drug_exposure_end_date", "date", true),
      col("drug_exposure_end_datetime", "timestamp"),
      col("verbatim_end_date", "date"),
      col("drug_type_concept_id", "integer", true),
      col("stop_reason", "varchar(20)"),
      col("refills", "integer"),
      col("quantity", "numeric"),
      col("days_supply", "integer"),
      col("sig", "text"),
      col("route_concept_id", "integer"),
      col("lot_number", "varchar(50)"),
      col("provider_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("visit_detail_id", "integer"),
      col("drug_source_value", "varchar(50)"),
      col("drug_source_concept_id", "integer"),
      col("route_source_value", "varchar(50)"),
      col("dose_unit_source_value", "varchar(50)"),
    ],
  },
  {
    name: "procedure_occurrence",
    primaryKey: "procedure_occurrence_id",
    indexes: ["person_id", "procedure_concept_id"],
    columns: [
      col("procedure_occurrence_id", "integer", true),
      col("person_id", "integer", true),
      col("procedure_concept_id", "integer", true),
      col("procedure_date", "date", true),
      col("procedure_datetime", "timestamp"),
      col("procedure_end_date", "date"),
      col("procedure_end_datetime", "timestamp"),
      col("procedure_type_concept_id", "integer", true),
      col("modifier_concept_id", "integer"),
      col("quantity", "integer"),
      col("provider_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("visit_detail_id", "integer"),
      col("procedure_source_value", "varchar(50)"),
      col("procedure_source_concept_id", "integer"),
      col("modifier_source_value", "varchar(50)"),
    ],
  },
  {
    name: "measurement",
    primaryKey: "measurement_id",
    indexes: ["person_id", "measurement_concept_id"],
    columns: [
      col("measurement_id", "integer", true),
      col("person_id", "integer", true),
      col("measurement_concept_id", "integer", true),
      col("measurement_date", "date", true),
      col("measurement_datetime", "timestamp"),
      col("measurement_time", "varchar(10)"),
      col("measurement_type_concept_id", "integer", true),
      col("operator_concept_id", "integer"),
      col("value_as_number", "numeric"),
      col("value_as_concept_id", "integer"),
      col("unit_concept_id", "integer"),
      col("range_low", "numeric"),
      col("range_high", "numeric"),
      col("provider_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("visit_detail_id", "integer"),
      col("measurement_source_value", "varchar(50)"),
      col("measurement_source_concept_id", "integer"),
      col("unit_source_value", "varchar(50)"),
      col("unit_source_concept_id", "integer"),
      col("value_source_value", "varchar(50)"),
      col("measurement_event_id", "bigint"),
      col("meas_event_field_concept_id", "integer"),
    ],
  },
  {
    name: "observation",
    primaryKey: "observation_id",
    indexes: ["person_id", "observation_concept_id"],
    columns: [
      col("observation_id", "integer", true),
      col("person_id", "integer", true),
      col("observation_concept_id", "integer", true),
      col("observation_date", "date", true),
      col("observation_datetime", "timestamp"),
      col("observation_type_concept_id", "integer", true),
      col("value_as_number", "numeric"),
      col("value_as_string", "varchar(60)"),
      col("value_as_concept_id", "integer"),
      col("qualifier_concept_id", "integer"),
      col("unit_concept_id", "integer"),
      col("provider_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("visit_detail_id", "integer"),
      col("observation_source_value", "varchar(50)"),
      col("observation_source_concept_id", "integer"),
      col("unit_source_value", "varchar(50)"),
      col("qualifier_source_value", "varchar(50)"),
      col("value_source_value", "varchar(50)"),
      col("observation_event_id", "bigint"),
      col("obs_event_field_concept_id", "integer"),
    ],
  },
  {
    name: "death",
    primaryKey: "person_id",
    indexes: [],
    columns: [
      col("person_id", "integer", true),
      col("death_date", "date", true),
      col("death_datetime", "timestamp"),
      col("death_type_concept_id", "integer"),
      col("cause_concept_id", "integer"),
      col("cause_source_value", "varchar(50)"),
      col("cause_source_concept_id", "integer"),
    ],
  },
  {
    name: "image_occurrence",
    primaryKey: "image_occurrence_id",
    indexes: ["person_id", "accession_id"],
    columns: [
      col("image_occurrence_id", "integer", true),
      col("person_id", "integer", true),
      col("procedure_occurrence_id", "integer"),
      col("visit_occurrence_id", "integer"),
      col("anatomic_site_concept_id", "integer"),
      col("wadors_uri", "varchar(255)"),
      col("local_path", "varchar(255)"),
      col("image_occurrence_date", "date", true),
      col("image_study_uid", "varchar(250)", true),
      col("image_series_uid", "varchar(250)"),
      col("modality_concept_id", "integer"),
      col("modality_source_value", "varchar(50)"),
      // FLIP addition: the PACS accession number of the study.
      col("accession_id", "varchar(255)"),
    ],
  },
];

export { OMOP_SCHEMA, READER_ROLE };

/** The CREATE statements for schema `omop`; safe to run again on an existing schema. */
function omopDdl(): string[] {
  const statements = [`create schema if not exists ${OMOP_SCHEMA}`];
  for (const t of OMOP_TABLES) {
    const cols = t.columns.map((c) => `  ${c.name} ${c.type}${c.notNull ? " not null" : ""}`);
    if (t.primaryKey) cols.push(`  primary key (${t.primaryKey})`);
    statements.push(`create table if not exists ${OMOP_SCHEMA}.${t.name} (\n${cols.join(",\n")}\n)`);
    for (const c of t.indexes) {
      statements.push(`create index if not exists ${t.name}_${c}_idx on ${OMOP_SCHEMA}.${t.name} (${c})`);
    }
  }
  return statements;
}

/**
 * Creates schema `omop` and its tables when missing, and the read-only role `flip_cohort_reader`
 * (USAGE on `omop`, SELECT on its tables; no login until the data-access service enables it).
 * Idempotent. Accepts a connection URL or an open client.
 */
export async function applyOmopSchema(db: string | pg.ClientBase, opts: { readerRole?: string } = {}): Promise<void> {
  await withClient(db, async (client) => {
    // Serialises concurrent appliers on one database (CREATE ... IF NOT EXISTS is not race-free).
    await client.query("select pg_advisory_lock(hashtext('flip.omop.schema'))");
    try {
      for (const sql of omopDdl()) await client.query(sql);
      await grantCohortReader(client, opts.readerRole ?? READER_ROLE);
    } finally {
      await client.query("select pg_advisory_unlock(hashtext('flip.omop.schema'))");
    }
  });
}

/** Runs `work` on the given client, or on a client opened (and closed) for the given URL. */
export async function withClient<T>(db: string | pg.ClientBase, work: (c: pg.ClientBase) => Promise<T>): Promise<T> {
  if (typeof db !== "string") return await work(db);
  const client = new pg.Client({ connectionString: db });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
