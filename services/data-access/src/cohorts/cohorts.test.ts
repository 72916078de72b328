import test from "ava";
import { ReadOnlyExecutor } from "../execution/executor.js";
import { PERMIT_ALL, PolicyDeniedError, type TrustPolicy } from "../policy/policy.js";
import { createOmopFixture, type OmopFixture } from "../testing/omop-fixture.js";
import { QueryRejectedError } from "../validation/rejection.js";
import type { CohortDeps } from "./deps.js";
import { QueryGuard } from "./query-guard.js";
import { CohortBelowThresholdError, CohortNotFoundError } from "./errors.js";
import { freezeCohort, getFrozenCohort } from "./freeze.js";
import { frozenCohortRows, listCohortAccessions } from "./row-level-access.js";
import { getCohortStatistics } from "./statistics.js";

let fx: OmopFixture;

test.before(async () => {
  fx = await createOmopFixture({ persons: 400, seed: 11 });
});

test.after.always(async () => {
  await fx?.close();
});

function deps(policy: TrustPolicy = PERMIT_ALL): CohortDeps {
  return {
    executor: new ReadOnlyExecutor(fx.reader, { statementTimeoutMs: 10_000, maxRows: 100_000 }),
    owner: fx.owner,
    policy,
    threshold: 10,
    guard: new QueryGuard(fx.owner, { perDay: 10_000 }),
    log: fx.log,
  };
}

/** Persons in [from, to], so that tests which delete persons do not disturb each other. */
const between = (from: number, to: number) => `select person_id, year_of_birth from person where person_id between ${from} and ${to}`;

async function allRows(d: CohortDeps, projectId: string) {
  const rows: string[][] = [];
  let columns: string[] = [];
  for await (const batch of frozenCohortRows(d, projectId, 7)) {
    columns = batch.columns;
    rows.push(...batch.rows);
  }
  return { columns, rows };
}

test("a frozen cohort serves only members still present in OMOP: it shrinks and never grows", async (t) => {
  const d = deps();
  // Person 0, added after the freeze, matches this query too: it must not join the cohort.
  const sql = "select person_id, year_of_birth from person where person_id <= 30";
  const counts = await freezeCohort(d, { projectId: "shrink", queryId: "q1", sql, minCount: 0 });
  t.is(counts.personCount, 30);
  t.false(counts.suppressed);
  t.regex(counts.querySha256, /^[0-9a-f]{64}$/);

  const before = await allRows(d, "shrink");
  t.deepEqual(before.columns, ["person_id", "year_of_birth"]);
  t.is(before.rows.length, 30);

  await fx.owner.query("delete from omop.person where person_id between 1 and 5");
  await fx.owner.query(
    "insert into omop.person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id) values (0, 8507, 1970, 0, 0)",
  );
  const after = await allRows(d, "shrink");
  t.is(after.rows.length, 25);
  t.false(after.rows.some(([id]) => Number(id) <= 5));
  const live = await fx.owner.query("select count(*)::int as n from omop.person where person_id <= 30");
  t.is(live.rows[0].n, 26, "the query itself now matches 26 persons");
  const status = await getFrozenCohort(d, "shrink");
  t.is(status.counts.personCount, 30);
  t.is(status.presentPersonCount, 25);
});

test("rows and accessions are refused with one fixed message once fewer than T members remain", async (t) => {
  const d = deps();
  await freezeCohort(d, { projectId: "dwindle", queryId: "q1", sql: between(40, 52), minCount: 0 });
  t.is((await allRows(d, "dwindle")).rows.length, 13);
  await fx.owner.query("delete from omop.person where person_id between 40 and 43");
  const rows = await t.throwsAsync(allRows(d, "dwindle"), { instanceOf: CohortBelowThresholdError });
  const accessions = await t.throwsAsync(listCohortAccessions(d, "dwindle"), { instanceOf: CohortBelowThresholdError });
  t.is(rows?.message, accessions?.message);
  t.false(/\d/.test(rows?.message ?? ""), "the message carries no count");
  t.is((await getFrozenCohort(d, "dwindle")).presentPersonCount, 0);
});

test("freezing is idempotent per project: a second call keeps the first cohort", async (t) => {
  const d = deps();
  const first = await freezeCohort(d, { projectId: "again", queryId: "q1", sql: between(60, 90), minCount: 0 });
  const second = await freezeCohort(d, { projectId: "again", queryId: "q2", sql: between(60, 200), minCount: 0 });
  t.deepEqual(second, first);
  const [a, b] = await Promise.all([
    freezeCohort(d, { projectId: "race", queryId: "q1", sql: between(60, 90), minCount: 0 }),
    freezeCohort(d, { projectId: "race", queryId: "q1", sql: between(60, 90), minCount: 0 }),
  ]);
  t.deepEqual(a, b);
  const { rows } = await fx.owner.query("select count(*)::int as n from flip_local.frozen_cohort where project_id = 'race'");
  t.is(rows[0].n, 1);
});

test("a cohort below the threshold freezes with suppressed counts and serves no rows", async (t) => {
  const d = deps();
  const counts = await freezeCohort(d, { projectId: "tiny", queryId: "q1", sql: between(100, 104), minCount: 0 });
  t.deepEqual({ personCount: counts.personCount, studyCount: counts.studyCount, suppressed: counts.suppressed }, { personCount: 0, studyCount: 0, suppressed: true });
  await t.throwsAsync(allRows(d, "tiny"), { instanceOf: CohortBelowThresholdError });
});

test("the hub's min_count raises the threshold a freeze keeps for later serves", async (t) => {
  const d = deps();
  const counts = await freezeCohort(d, { projectId: "strict", queryId: "q1", sql: between(110, 129), minCount: 25 });
  t.true(counts.suppressed);
  await t.throwsAsync(allRows(d, "strict"), { instanceOf: CohortBelowThresholdError });
});

test("accession numbers are those of the frozen members' studies still present", async (t) => {
  const d = deps();
  await freezeCohort(d, { projectId: "imaging", queryId: "q1", sql: between(150, 250), minCount: 0 });
  const expected = await fx.owner.query<{ accession_id: string }>(
    "select accession_id from omop.image_occurrence where person_id between 150 and 250 order by accession_id",
  );
  const accessions = await listCohortAccessions(d, "imaging");
  t.deepEqual(accessions, expected.rows.map((r) => r.accession_id));
  t.true(accessions.every((a) => /^ACCNORTH\d{6}$/.test(a)));
  const { rows } = await fx.owner.query<{ person_id: number }>("select person_id from omop.image_occurrence where person_id between 150 and 250 limit 1");
  await fx.owner.query("delete from omop.person where person_id = $1", [rows[0]!.person_id]);
  t.true((await listCohortAccessions(d, "imaging")).length < accessions.length);
});

test("freezing needs a person_id column", async (t) => {
  const e = await t.throwsAsync(freezeCohort(deps(), { projectId: "no-ids", queryId: "q1", sql: "select year_of_birth from person", minCount: 0 }), {
    instanceOf: QueryRejectedError,
  });
  t.is(e?.rule, "person_id_required");
});

test("a freeze that fails on one record reports exactly like a small cohort's freeze", async (t) => {
  const d = deps();
  const sql = "select person_id, cast(case when person_id = 142 then 'x' else '1' end as integer) as v from person";
  const failing = await freezeCohort(d, { projectId: "fails-on-data", queryId: "q1", sql, minCount: 0 });
  const small = await freezeCohort(d, { projectId: "small", queryId: "q1", sql: between(130, 132), minCount: 0 });
  t.deepEqual({ ...failing, querySha256: "" }, { ...small, querySha256: "" });
  const [a, b] = [await getFrozenCohort(d, "fails-on-data"), await getFrozenCohort(d, "small")];
  t.deepEqual([a.counts.suppressed, a.presentPersonCount], [b.counts.suppressed, b.presentPersonCount]);
});

test("a freeze's person_id must be an integer column, checked before any row is read", async (t) => {
  const e = await t.throwsAsync(freezeCohort(deps(), { projectId: "text-ids", queryId: "q1", sql: "select person_source_value as person_id from person", minCount: 0 }), {
    instanceOf: QueryRejectedError,
  });
  t.is(e?.rule, "person_id_required");
  t.regex(e?.message ?? "", /integer column/);
});

test("the trust's policy applies to each action", async (t) => {
  const policy: TrustPolicy = {
    minCohortSize: 0,
    queryBudgetPerDay: 200,
    rules: [
      { id: "no-rows", action: "cohort.rows", effect: "deny", projects: ["governed"] },
      { id: "no-stats", action: "cohort.statistics", effect: "deny", projects: ["*"] },
    ],
  };
  const d = deps(policy);
  await freezeCohort(d, { projectId: "governed", queryId: "q1", sql: between(300, 340), minCount: 0 });
  await t.throwsAsync(allRows(d, "governed"), { instanceOf: PolicyDeniedError });
  await t.notThrowsAsync(listCohortAccessions(d, "governed"));
  await t.throwsAsync(getCohortStatistics(d, { projectId: "governed", queryId: "q2", sql: "select 1", minCount: 0 }), { instanceOf: PolicyDeniedError });
});

test("asking for a cohort that was never frozen is reported as not found", async (t) => {
  await t.throwsAsync(getFrozenCohort(deps(), "never"), { instanceOf: CohortNotFoundError });
  await t.throwsAsync(allRows(deps(), "never"), { instanceOf: CohortNotFoundError });
});

test("cohort statistics come from the validated query with small counts suppressed", async (t) => {
  const stats = await getCohortStatistics(deps(), {
    projectId: "stats",
    queryId: "q1",
    sql: "select p.person_id, p.gender_concept_id, 2024 - p.year_of_birth as age from person p where p.person_id between 300 and 400",
    minCount: 0,
  });
  if (stats.outcome !== "ok") return t.fail("expected statistics");
  t.is(stats.threshold, 10);
  t.deepEqual(
    stats.columns.map((c) => [c.name, c.kind]),
    [
      ["person_id", "withheld"],
      ["gender_concept_id", "categorical"],
      ["age", "numeric"],
    ],
  );
});
