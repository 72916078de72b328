/**
 * Builds a synthetic trust population as OMOP rows, in memory and deterministically from a seed.
 * Loading into PostgreSQL is `generate.ts`'s job; keeping this pure makes the case mix testable.
 */
import {
  ALL_CONCEPTS,
  ANATOMIC_SITE,
  CONDITION,
  DRUG,
  EHR_TYPE,
  ETHNICITY,
  GENDER,
  IMAGING_PROCEDURE,
  MEASUREMENT,
  OBSERVATION,
  RACE,
  SMOKING_VALUE,
  UNIT,
  VISIT,
  type Concept,
} from "./concepts.js";
import { BASELINE_RISKS, conditionRisk, type TrustProfile } from "./profiles.js";
import { Random } from "./random.js";

/** One row per table, keyed by OMOP column name; absent columns load as NULL. */
export type OmopRow = Record<string, string | number | null>;
export type OmopRows = Record<string, OmopRow[]>;

export interface PopulationOptions {
  seed: number;
  persons: number;
  profile: TrustProfile;
}

/** Data is "as of" this day, whatever the wall clock says, so a seed always gives the same trust. */
const AS_OF_YEAR = 2024;
const DAY_MS = 86_400_000;
const dayOf = (y: number, m: number, d: number) => Math.floor(Date.UTC(y, m - 1, d) / DAY_MS);
const AS_OF = dayOf(AS_OF_YEAR, 12, 31);
const RECORDS_START = dayOf(2008, 1, 1);
const isoDate = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

type Modality = keyof typeof IMAGING_PROCEDURE;

interface Visit {
  id: number;
  day: number;
}

export function generatePopulation(opts: PopulationOptions): OmopRows {
  const rnd = new Random(opts.seed);
  const { profile } = opts;
  const rows: OmopRows = {
    concept: ALL_CONCEPTS.map(conceptRow),
    person: [],
    observation_period: [],
    visit_occurrence: [],
    condition_occurrence: [],
    drug_exposure: [],
    procedure_occurrence: [],
    measurement: [],
    observation: [],
    death: [],
    image_occurrence: [],
  };
  const ids = { visit: 0, condition: 0, drug: 0, procedure: 0, measurement: 0, observation: 0, image: 0 };
  const uidRoot = `1.2.826.0.1.3680043.10.543.${hashCode(profile.accessionCode)}.${opts.seed >>> 0}`;

  for (let personId = 1; personId <= opts.persons; personId++) {
    const age = Math.round(Math.min(100, Math.max(0, rnd.normal(profile.meanAge, profile.ageSd))));
    const female = rnd.chance(profile.femaleShare);
    const birthYear = AS_OF_YEAR - age;
    const birthMonth = rnd.int(1, 12);
    const birthDay = rnd.int(1, 28);
    const race = rnd.weighted([
      [RACE.white, profile.raceMix[0]],
      [RACE.black, profile.raceMix[1]],
      [RACE.asian, profile.raceMix[2]],
    ] as const);
    const ethnicity = rnd.chance(0.04) ? ETHNICITY.hispanic : ETHNICITY.notHispanic;
    const gender = female ? GENDER.female : GENDER.male;
    rows.person!.push({
      person_id: personId,
      gender_concept_id: gender.id,
      year_of_birth: birthYear,
      month_of_birth: birthMonth,
      day_of_birth: birthDay,
      race_concept_id: race.id,
      ethnicity_concept_id: ethnicity.id,
      person_source_value: `${profile.accessionCode}-${String(personId).padStart(7, "0")}`,
      gender_source_value: gender.code,
      gender_source_concept_id: 0,
      race_source_value: race.name,
      race_source_concept_id: 0,
      ethnicity_source_value: ethnicity.code,
      ethnicity_source_concept_id: 0,
    });

    const conditions = diagnose(rnd, profile, age, female);
    const chronicCount = conditions.filter((c) => c.chronic).length;

    const born = dayOf(birthYear, birthMonth, birthDay);
    const start = Math.max(born, RECORDS_START + rnd.int(0, 3000));
    const deathRisk = Math.min(0.6, 0.0015 * Math.exp((age - 40) / 11) * (1 + 0.4 * chronicCount));
    const deathDay = rnd.chance(deathRisk) ? rnd.int(Math.min(start + 30, AS_OF), AS_OF) : undefined;
    const end = deathDay ?? AS_OF;
    rows.observation_period!.push({
      observation_period_id: personId,
      person_id: personId,
      observation_period_start_date: isoDate(start),
      observation_period_end_date: isoDate(end),
      period_type_concept_id: EHR_TYPE.id,
    });

    const visits: Visit[] = [];
    const visitCount = 1 + Math.floor(rnd.next() * (3 + 2 * chronicCount));
    for (let i = 0; i < visitCount; i++) {
      const day = rnd.int(start, end);
      const kind = rnd.weighted([
        [VISIT.outpatient, 80],
        [VISIT.emergency, 12],
        [VISIT.inpatient, 8],
      ] as const);
      const endDay = Math.min(end, kind === VISIT.inpatient ? day + rnd.int(1, 10) : day);
      const visit = { id: ++ids.visit, day };
      visits.push(visit);
      rows.visit_occurrence!.push({
        visit_occurrence_id: visit.id,
        person_id: personId,
        visit_concept_id: kind.id,
        visit_start_date: isoDate(day),
        visit_end_date: isoDate(endDay),
        visit_type_concept_id: EHR_TYPE.id,
        visit_source_value: kind.code,
        visit_source_concept_id: 0,
      });
    }
    const atVisit = () => rnd.pick(visits);

    for (const c of conditions) {
      const times = c.chronic ? 1 : rnd.int(1, 3);
      for (let i = 0; i < times; i++) {
        const v = atVisit();
        rows.condition_occurrence!.push({
          condition_occurrence_id: ++ids.condition,
          person_id: personId,
          condition_concept_id: c.condition.id,
          condition_start_date: isoDate(v.day),
          condition_end_date: c.chronic ? null : isoDate(Math.min(end, v.day + rnd.int(5, 21))),
          condition_type_concept_id: EHR_TYPE.id,
          visit_occurrence_id: v.id,
          condition_source_value: c.condition.code,
          condition_source_concept_id: 0,
        });
      }
    }

    const has = (concept: Concept) => conditions.some((c) => c.condition === concept);
    const measure = (concept: Concept, unit: Concept, value: number, low: number | null, high: number | null) => {
      const v = atVisit();
      rows.measurement!.push({
        measurement_id: ++ids.measurement,
        person_id: personId,
        measurement_concept_id: concept.id,
        measurement_date: isoDate(v.day),
        measurement_type_concept_id: EHR_TYPE.id,
        value_as_number: value,
        unit_concept_id: unit.id,
        range_low: low,
        range_high: high,
        visit_occurrence_id: v.id,
        measurement_source_value: concept.code,
        measurement_source_concept_id: 0,
        unit_source_value: unit.code,
        value_source_value: String(value),
      });
    };
    const obese = has(CONDITION.obesity);
    const diabetic = has(CONDITION.type2Diabetes) || has(CONDITION.type1Diabetes);
    const hypertensive = has(CONDITION.hypertension);
    if (age >= 2) {
      for (let i = rnd.int(1, 2); i > 0; i--) {
        measure(MEASUREMENT.bmi, UNIT.kgPerM2, round1(clamp(rnd.normal(26 + (obese ? 8 : 0) + (diabetic ? 3 : 0), 4), 14, 65)), 18.5, 25);
      }
    }
    if (age >= 16) {
      for (let i = rnd.int(1, 3); i > 0; i--) {
        const systolic = Math.round(clamp(rnd.normal(118 + age * 0.25 + (hypertensive ? 18 : 0), 12), 85, 220));
        measure(MEASUREMENT.systolicBp, UNIT.mmHg, systolic, 90, 120);
        measure(MEASUREMENT.diastolicBp, UNIT.mmHg, Math.round(clamp(systolic * 0.62 + rnd.normal(0, 6), 45, 130)), 60, 80);
      }
    }
    if (diabetic || rnd.chance(0.15)) {
      for (let i = diabetic ? rnd.int(1, 4) : 1; i > 0; i--) {
        measure(MEASUREMENT.hba1c, UNIT.percent, round1(clamp(diabetic ? rnd.normal(7.6, 1.3) : rnd.normal(5.4, 0.35), 4, 15)), 4, 6);
      }
    }
    if (has(CONDITION.hyperlipidemia) || has(CONDITION.myocardialInfarction) || rnd.chance(0.2)) {
      measure(MEASUREMENT.cholesterol, UNIT.mgPerDl, Math.round(clamp(rnd.normal(has(CONDITION.hyperlipidemia) ? 240 : 190, 30), 100, 400)), 125, 200);
    }
    if (has(CONDITION.chronicKidneyDisease) || rnd.chance(0.1)) {
      measure(MEASUREMENT.creatinine, UNIT.mgPerDl, round1(clamp(rnd.normal(has(CONDITION.chronicKidneyDisease) ? 2.1 : 0.95, 0.3), 0.3, 8)), 0.6, 1.3);
    }
    if (rnd.chance(0.3)) {
      measure(MEASUREMENT.heartRate, UNIT.perMinute, Math.round(clamp(rnd.normal(has(CONDITION.atrialFibrillation) ? 95 : 74, 11), 40, 180)), 60, 100);
    }

    for (const [drug, p] of prescriptions(conditions.map((c) => c.condition))) {
      if (!rnd.chance(p)) continue;
      for (let i = rnd.int(1, 3); i > 0; i--) {
        const v = atVisit();
        const daysSupply = rnd.pick([28, 30, 56, 90]);
        rows.drug_exposure!.push({
          drug_exposure_id: ++ids.drug,
          person_id: personId,
          drug_concept_id: drug.id,
          drug_exposure_start_date: isoDate(v.day),
          drug_exposure_end_date: isoDate(v.day + daysSupply),
          drug_type_concept_id: EHR_TYPE.id,
          refills: rnd.int(0, 5),
          quantity: daysSupply,
          days_supply: daysSupply,
          visit_occurrence_id: v.id,
          drug_source_value: drug.code,
          drug_source_concept_id: 0,
        });
      }
    }

    if (age >= 16) {
      const smoking = rnd.weighted([
        [SMOKING_VALUE.never, profile.smokingMix.never],
        [SMOKING_VALUE.former, profile.smokingMix.former],
        [SMOKING_VALUE.current, profile.smokingMix.current],
      ] as const);
      const v = atVisit();
      rows.observation!.push({
        observation_id: ++ids.observation,
        person_id: personId,
        observation_concept_id: OBSERVATION.smokingStatus.id,
        observation_date: isoDate(v.day),
        observation_type_concept_id: EHR_TYPE.id,
        value_as_string: smoking.name,
        value_as_concept_id: smoking.id,
        visit_occurrence_id: v.id,
        observation_source_value: OBSERVATION.smokingStatus.code,
        observation_source_concept_id: 0,
        value_source_value: smoking.code,
      });
    }

    if (rnd.chance(Math.min(0.9, profile.imagingRate * (1 + 0.15 * chronicCount)))) {
      for (let i = rnd.int(1, 3); i > 0; i--) {
        const modality = pickModality(rnd, has);
        const v = atVisit();
        const procedure = IMAGING_PROCEDURE[modality];
        const procedureId = ++ids.procedure;
        rows.procedure_occurrence!.push({
          procedure_occurrence_id: procedureId,
          person_id: personId,
          procedure_concept_id: procedure.id,
          procedure_date: isoDate(v.day),
          procedure_type_concept_id: EHR_TYPE.id,
          quantity: 1,
          visit_occurrence_id: v.id,
          procedure_source_value: procedure.code,
          procedure_source_concept_id: 0,
        });
        const imageId = ++ids.image;
        const studyUid = `${uidRoot}.${imageId}`;
        rows.image_occurrence!.push({
          image_occurrence_id: imageId,
          person_id: personId,
          procedure_occurrence_id: procedureId,
          visit_occurrence_id: v.id,
          anatomic_site_concept_id: modality === "MR" ? ANATOMIC_SITE.brain.id : ANATOMIC_SITE.chest.id,
          wadors_uri: `/dicomweb/studies/${studyUid}`,
          image_occurrence_date: isoDate(v.day),
          image_study_uid: studyUid,
          image_series_uid: `${studyUid}.1`,
          modality_concept_id: 0,
          modality_source_value: modality,
          accession_id: `ACC${profile.accessionCode}${String(imageId).padStart(6, "0")}`,
        });
      }
    }

    if (deathDay !== undefined) {
      const chronic = conditions.filter((c) => c.chronic);
      const cause = chronic.length > 0 ? rnd.pick(chronic).condition : undefined;
      rows.death!.push({
        person_id: personId,
        death_date: isoDate(deathDay),
        death_type_concept_id: EHR_TYPE.id,
        cause_concept_id: cause?.id ?? 0,
        cause_source_value: cause?.code ?? null,
        cause_source_concept_id: 0,
      });
    }
  }
  return rows;
}

/** Conditions a person has, with a little comorbidity: obesity raises diabetes and hypertension, and so on. */
function diagnose(rnd: Random, profile: TrustProfile, age: number, female: boolean) {
  const found: (typeof BASELINE_RISKS)[number][] = [];
  const present = (c: Concept) => found.some((f) => f.condition === c);
  for (const risk of BASELINE_RISKS) {
    if (risk.condition === CONDITION.breastCancer && !female) continue;
    let p = conditionRisk(profile, risk, age);
    if (risk.condition === CONDITION.type2Diabetes && present(CONDITION.obesity)) p *= 2;
    if (risk.condition === CONDITION.hypertension && present(CONDITION.obesity)) p *= 1.5;
    if (risk.condition === CONDITION.myocardialInfarction && present(CONDITION.type2Diabetes)) p *= 1.5;
    if (risk.condition === CONDITION.chronicKidneyDisease && present(CONDITION.type2Diabetes)) p *= 2;
    if (risk.condition === CONDITION.heartFailure && present(CONDITION.myocardialInfarction)) p *= 3;
    if (rnd.chance(Math.min(0.95, p))) found.push(risk);
  }
  return found;
}

/** What each condition is usually treated with, and how often. */
const TREATMENTS: ReadonlyMap<Concept, readonly (readonly [Concept, number])[]> = new Map([
  [CONDITION.type2Diabetes, [[DRUG.metformin, 0.85], [DRUG.insulinGlargine, 0.2]]],
  [CONDITION.type1Diabetes, [[DRUG.insulinGlargine, 0.95]]],
  [CONDITION.asthma, [[DRUG.albuterol, 0.9], [DRUG.fluticasone, 0.5]]],
  [CONDITION.copd, [[DRUG.albuterol, 0.9], [DRUG.fluticasone, 0.5]]],
  [CONDITION.hypertension, [[DRUG.lisinopril, 0.6], [DRUG.amlodipine, 0.4]]],
  [CONDITION.myocardialInfarction, [[DRUG.aspirin, 0.9], [DRUG.atorvastatin, 0.85], [DRUG.metoprolol, 0.6]]],
  [CONDITION.hyperlipidemia, [[DRUG.atorvastatin, 0.7]]],
  [CONDITION.atrialFibrillation, [[DRUG.warfarin, 0.6]]],
] as const);

/** Each drug a person may be on, with the highest probability any of their conditions gives it. */
function prescriptions(conditions: readonly Concept[]): [Concept, number][] {
  const out = new Map<Concept, number>([[DRUG.acetaminophen, 0.3]]);
  for (const c of conditions) {
    for (const [drug, p] of TREATMENTS.get(c) ?? []) out.set(drug, Math.max(out.get(drug) ?? 0, p));
  }
  return [...out];
}

function pickModality(rnd: Random, has: (c: Concept) => boolean): Modality {
  if (has(CONDITION.stroke)) return rnd.weighted([["MR", 6], ["CT", 3], ["CR", 1]] as const);
  if (has(CONDITION.copd) || has(CONDITION.lungCancer)) return rnd.weighted([["CT", 5], ["CR", 4], ["MR", 1]] as const);
  return rnd.weighted([["CT", 40], ["MR", 25], ["CR", 35]] as const);
}

function conceptRow(c: Concept): OmopRow {
  return {
    concept_id: c.id,
    concept_name: c.name,
    domain_id: c.domain,
    vocabulary_id: c.vocabulary,
    concept_class_id: c.conceptClass,
    standard_concept: c.domain === "Type Concept" || c.domain === "Meas Value" ? null : "S",
    concept_code: c.code,
    valid_start_date: "1970-01-01",
    valid_end_date: "2099-12-31",
    invalid_reason: null,
  };
}

function hashCode(s: string): number {
  let h = 0;
  for (const ch of s) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  return h % 100_000;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round1 = (x: number) => Math.round(x * 10) / 10;
