import test from "ava";
import { ReadOnlyExecutor } from "../execution/executor.js";
import { createOmopFixture, type OmopFixture } from "../testing/omop-fixture.js";
import { validateQuery } from "./validate.js";

/** Realistic cohort queries researchers write; each must be accepted and must run as the reader role. */
const VALID: string[] = [
  "select gender_concept_id, count(*) as n from person group by gender_concept_id",
  "select p.person_id, p.year_of_birth, p.gender_concept_id from person p where exists (select 1 from condition_occurrence c where c.person_id = p.person_id and c.condition_concept_id = 201826)",
  "select m.person_id, m.value_as_number from omop.measurement m join omop.condition_occurrence c on c.person_id = m.person_id where m.measurement_concept_id = 3004410 and c.condition_concept_id = 201826",
  "with diabetics as (select distinct person_id from condition_occurrence where condition_concept_id = 201826) select p.person_id, 2024 - p.year_of_birth as age from person p join diabetics d using (person_id)",
  "select person_id from condition_occurrence where condition_concept_id = 317009 union select person_id from drug_exposure where drug_concept_id = 1154343",
  "select person_id from condition_occurrence where condition_concept_id = 316866 intersect select person_id from condition_occurrence where condition_concept_id = 201826",
  "select person_id from person except all select person_id from death",
  "select person_id, condition_start_date from condition_occurrence where condition_start_date between date '2015-01-01' and '2020-12-31'",
  "select person_id from visit_occurrence where visit_end_date - visit_start_date > 3 and visit_concept_id = 9201",
  "select extract(year from visit_start_date) as year, count(*) from visit_occurrence group by 1 order by 1",
  "select person_id, measurement_date, value_as_number, row_number() over (partition by person_id order by measurement_date desc) as rn from measurement where measurement_concept_id = 3038553",
  "with ranked as (select person_id, value_as_number, row_number() over (partition by person_id order by measurement_date desc) rn from measurement where measurement_concept_id = 3038553) select person_id, value_as_number as bmi from ranked where rn = 1",
  "select case when 2024 - year_of_birth < 18 then 'child' when 2024 - year_of_birth < 65 then 'adult' else 'older adult' end as age_band, gender_concept_id from person",
  "select p.person_id, d.death_date is not null as died from person p left join death d on d.person_id = p.person_id",
  "select c.concept_name, count(distinct co.person_id) as persons from condition_occurrence co join concept c on c.concept_id = co.condition_concept_id group by c.concept_name having count(distinct co.person_id) >= 10",
  "select io.person_id, io.accession_id, io.modality_source_value from image_occurrence io where io.modality_source_value in ('CT', 'MR')",
  "select person_id from person where person_id not in (select person_id from death)",
  "select person_id from condition_occurrence where condition_concept_id = any(array[201826, 316866, 4329847])",
  "select measurement_concept_id, percentile_cont(0.5) within group (order by value_as_number) as median from measurement group by measurement_concept_id",
  "select lower(value_as_string) as smoking, count(*) from observation where observation_concept_id = 43054909 group by lower(value_as_string)",
  "select person_id, coalesce(value_as_number, 0) as v, greatest(range_low, 0) as low, nullif(unit_concept_id, 0) as unit from measurement where measurement_concept_id = 3004249 limit 100",
  "with recursive years(y) as (select 2015 union all select y + 1 from years where y < 2020) select y, (select count(*) from visit_occurrence v where extract(year from v.visit_start_date) = y) as visits from years",
  "select d::date as month from generate_series(date '2020-01-01', date '2020-12-01', interval '1 month') as d",
  "select count(*) filter (where gender_concept_id = 8532) as women, count(*) filter (where gender_concept_id = 8507) as men from person",
  "select distinct on (person_id) person_id, measurement_date, value_as_number from measurement where measurement_concept_id = 3004410 order by person_id, measurement_date desc",
  "select person_id, date_trunc('month', observation_period_start_date) as start_month, age(observation_period_end_date, observation_period_start_date) as span from observation_period",
  "select concept_id, concept_name from concept where concept_name ilike '%diabetes%' or concept_code like '4%'",
  "select person_id from person order by person_id limit 50 offset 10",
  "select gender_concept_id, race_concept_id, count(*) from person group by rollup (gender_concept_id, race_concept_id)",
  "with person as (select 1 as person_id) select person_id from person",
  "select p.person_id, avg(m.value_as_number) over (partition by p.gender_concept_id) as mean_bmi_for_gender from person p join measurement m on m.person_id = p.person_id and m.measurement_concept_id = 3038553",
  "select person_id, cast(value_as_number as integer) as sbp, value_as_number::numeric(5, 1) as sbp1 from measurement where measurement_concept_id = 3004249 and value_as_number is not null",
  "select trim(both ' ' from concept_name) as name, substring(concept_code from 1 for 3) as prefix, position('a' in concept_name) as a_at from concept",
  'select person_id from "omop"."person" -- a trailing comment; drop table person',
];

let fx: OmopFixture;
let executor: ReadOnlyExecutor;

test.before(async () => {
  fx = await createOmopFixture({ persons: 1500, seed: 7, profile: "north" });
  executor = new ReadOnlyExecutor(fx.reader, { statementTimeoutMs: 10_000, maxRows: 200_000 });
});

test.after.always(async () => {
  await fx?.close();
});

test("the valid corpus has at least twenty realistic cohort queries", (t) => {
  t.true(VALID.length >= 20);
});

test("every realistic cohort query is accepted and runs read-only as the reader role", async (t) => {
  const failures: string[] = [];
  for (const sql of VALID) {
    try {
      const q = validateQuery(sql);
      if (validateQuery(q.normalizedSql).normalizedSql !== q.normalizedSql) failures.push(`${sql} → normalised form is not stable`);
      const result = await executor.query(q.normalizedSql);
      if (result.columns.length === 0) failures.push(`${sql} → no columns`);
    } catch (e) {
      failures.push(`${sql} → ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }
  t.deepEqual(failures, []);
});

test("queries return the generated trust's data through the reader role", async (t) => {
  const q = validateQuery("select count(*) as n from person");
  const result = await executor.query(q.normalizedSql);
  t.deepEqual(result.rows, [["1500"]]);
});
