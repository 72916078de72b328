/**
 * The tables of OMOP CDM 5.4 (clinical, health system, economics, derived, metadata and vocabulary) and
 * of the MI-CDM imaging extension. An unqualified table name in a cohort query must be one of these; it
 * is then pinned to schema `omop`.
 */
export const OMOP_TABLES: ReadonlySet<string> = new Set([
  // clinical data
  "person",
  "observation_period",
  "visit_occurrence",
  "visit_detail",
  "condition_occurrence",
  "drug_exposure",
  "procedure_occurrence",
  "device_exposure",
  "measurement",
  "observation",
  "death",
  "note",
  "note_nlp",
  "specimen",
  "fact_relationship",
  "episode",
  "episode_event",
  // health system
  "location",
  "care_site",
  "provider",
  // economics
  "payer_plan_period",
  "cost",
  // derived elements
  "drug_era",
  "dose_era",
  "condition_era",
  // metadata
  "metadata",
  "cdm_source",
  // vocabulary
  "concept",
  "vocabulary",
  "domain",
  "concept_class",
  "concept_relationship",
  "relationship",
  "concept_synonym",
  "concept_ancestor",
  "source_to_concept_map",
  "drug_strength",
  "cohort",
  "cohort_definition",
  // MI-CDM imaging extension
  "image_occurrence",
  "image_feature",
]);
