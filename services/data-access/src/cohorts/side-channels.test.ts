import test from "ava";
import { toBinary } from "@bufbuild/protobuf";
import { CohortQueryOutputSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { ReadOnlyExecutor } from "../execution/executor.js";
import { PERMIT_ALL } from "../policy/policy.js";
import { createOmopFixture, type OmopFixture } from "../testing/omop-fixture.js";
import { QueryRejectedError } from "../validation/rejection.js";
import { cohortQueryOutput } from "../wire.js";
import type { CohortDeps } from "./deps.js";
import { LOCAL_SCHEMA } from "./local-store.js";
import { QueryBudgetSpentError, QueryGuard } from "./query-guard.js";
import { getCohortStatistics } from "./statistics.js";

let fx: OmopFixture;

test.before(async () => {
  fx = await createOmopFixture({ persons: 300, seed: 13 });
});

test.after.always(async () => {
  await fx?.close();
});

function deps(guard = new QueryGuard(fx.owner, { perDay: 10_000 })): CohortDeps {
  return { executor: new ReadOnlyExecutor(fx.reader, { statementTimeoutMs: 10_000, maxRows: 100_000 }), owner: fx.owner, policy: PERMIT_ALL, threshold: 10, guard, log: fx.log };
}

const ask = (d: CohortDeps, projectId: string, sql: string, queryId = "q") => getCohortStatistics(d, { projectId, queryId, sql, minCount: 0 });

/** What the researcher receives, byte for byte. */
const wire = (stats: Awaited<ReturnType<typeof getCohortStatistics>>) => Buffer.from(toBinary(CohortQueryOutputSchema, cohortQueryOutput(stats))).toString("hex");

async function ledger(projectId: string): Promise<{ rule: string; query_id: string }[]> {
  const { rows } = await fx.owner.query(`select rule, query_id from ${LOCAL_SCHEMA}.query_ledger where project_id = $1 order by id`, [projectId]);
  return rows;
}

/**
 * Queries that pass the validator but raise a runtime error only because patient 42 exists with the
 * attributes they test. Were the error shown, it would tell the researcher a fact about that one patient.
 */
const FAILS_ONLY_FOR_PATIENT_42 = [
  "select person_id, cast(case when person_id = 42 then 'x' else '1' end as integer) as v from person",
  "select person_id, year_of_birth * case when person_id = 42 then 2000000000 else 1 end as v from person",
  "select person_id, date '2020-01-01' + case when person_id = 42 then 2147483000 else 0 end as d from person",
  "select person_id, cast(case when person_id = 42 then '2020-13-45' else '2020-01-01' end as date) as d from person",
  "select person_id from person where (select p2.person_id from person p2 where p2.person_id in (42, 43)) > 0",
  "select person_id, cast(case when person_id = 42 then 123456.7 else 1 end as numeric(4, 1)) as v from person",
];

test("a query that fails on one patient's record is answered exactly like a suppressed cohort", async (t) => {
  const d = deps();
  const suppressed = await ask(d, "errors", "select person_id from person where person_id <= 3", "small");
  t.is(suppressed.outcome, "suppressed");
  for (const [i, sql] of FAILS_ONLY_FOR_PATIENT_42.entries()) {
    // Without patient 42 the same query succeeds, so the difference is all about that patient.
    const answer = await ask(d, "errors", sql, `hostile-${i}`);
    t.is(wire(answer), wire(suppressed), sql);
  }
  const rules = (await ledger("errors")).map((r) => r.rule);
  t.deepEqual(rules, FAILS_ONLY_FOR_PATIENT_42.map(() => "data_error"), "each failure is recorded at the trust, with no SQL text");
  const columns = await fx.owner.query(`select column_name from information_schema.columns where table_schema = $1 and table_name = 'query_ledger'`, [LOCAL_SCHEMA]);
  t.false(columns.rows.some((r: { column_name: string }) => /sql|text|value/.test(r.column_name)));
});

test("constructs that fail on some records are refused before they run", async (t) => {
  const d = deps();
  for (const sql of ["select person_id, 1 / (person_id - 42) from person", "select person_id from person where sqrt(person_id - 42) > 0"]) {
    const e = await t.throwsAsync(ask(d, "refused", sql), { instanceOf: QueryRejectedError });
    t.is(e?.rule, "data_dependent_error");
  }
});

test("the same query with another literal is answered as suppressed, and the ledger says why", async (t) => {
  const d = deps();
  const first = await ask(d, "literals", "select person_id, year_of_birth from person where person_id <= 200", "q1");
  t.is(first.outcome, "ok");
  const again = await ask(d, "literals", "select person_id, year_of_birth from person where person_id <= 200", "q2");
  t.is(again.outcome, "ok", "repeating a query exactly reveals nothing new");
  const shifted = await ask(d, "literals", "select person_id, year_of_birth from person where person_id <= 199", "q3");
  t.deepEqual(shifted, { outcome: "suppressed", threshold: 10 });
  t.deepEqual(await ledger("literals"), [{ rule: "repeated_with_other_literals", query_id: "q3" }]);
  const other = await ask(d, "literals-elsewhere", "select person_id, year_of_birth from person where person_id <= 199", "q1");
  t.is(other.outcome, "ok", "the guard works per project");
});

test("a cohort that differs from a recent one by fewer than T persons is answered as suppressed", async (t) => {
  const d = deps();
  t.is((await ask(d, "minus-one", "select person_id, year_of_birth from person where person_id <= 150", "all")).outcome, "ok");
  const minusOne = await ask(d, "minus-one", "select p.person_id, p.year_of_birth from person p where p.person_id <= 150 and p.person_id <> 42", "all-but-42");
  t.deepEqual(minusOne, { outcome: "suppressed", threshold: 10 });
  t.deepEqual(await ledger("minus-one"), [{ rule: "cohort_difference_below_threshold", query_id: "all-but-42" }]);
  const farApart = await ask(d, "minus-one", "select person_id, gender_concept_id from person where person_id > 100", "far");
  t.is(farApart.outcome, "ok", "cohorts that differ by T or more persons are answered");
  const hashed = await fx.owner.query(`select member_hashes from ${LOCAL_SCHEMA}.query_history where project_id = 'minus-one' and member_hashes is not null limit 1`);
  t.false((hashed.rows[0].member_hashes as string[]).some((h) => /^\d+$/.test(h)), "person ids are kept only as keyed hashes");
});

test("two concurrent differencing queries cannot both be answered", async (t) => {
  const d = deps();
  const answers = await Promise.all([
    ask(d, "race", "select person_id from person where person_id <= 120", "a"),
    ask(d, "race", "select p.person_id from person p where p.person_id <= 120 and p.person_id <> 7", "b"),
  ]);
  t.deepEqual(answers.map((a) => a.outcome).sort(), ["ok", "suppressed"]);
  t.is((await ledger("race")).length, 1);
});

test("a project's daily budget is enforced, reported, and resets at 00:00 UTC", async (t) => {
  let now = new Date("2030-03-04T22:15:00Z");
  const guard = new QueryGuard(fx.owner, { perDay: 3, now: () => now });
  const d = deps(guard);
  for (let i = 0; i < 3; i++) await ask(d, "budget", `select person_id from person where person_id <= ${20 + 30 * i} and person_id > ${30 * i}`, `q${i}`);
  t.deepEqual(await guard.budget("budget"), { perDay: 3, used: 3, remaining: 0, resetsAt: new Date("2030-03-05T00:00:00Z") });
  const e = await t.throwsAsync(ask(d, "budget", "select person_id from person"), { instanceOf: QueryBudgetSpentError });
  t.is(e?.message, "this project's budget of 3 cohort queries per day at this trust is spent; it resets at 2030-03-05T00:00:00.000Z (00:00 UTC)");
  t.deepEqual((await ledger("budget")).at(-1), { rule: "budget_spent", query_id: "q" });
  t.is((await guard.budget("other-project")).remaining, 3, "the budget is per project");
  now = new Date("2030-03-05T00:00:01Z");
  t.is((await ask(d, "budget", "select person_id from person")).outcome, "ok");
  t.like(await guard.budget("budget"), { used: 1, remaining: 2 });
});

test("the budget holds under concurrency: no more queries than the budget are answered", async (t) => {
  const guard = new QueryGuard(fx.owner, { perDay: 2 });
  const d = deps(guard);
  const outcomes = await Promise.allSettled([0, 1, 2, 3].map((i) => ask(d, "budget-race", `select person_id from person where person_id > ${i * 50}`, `q${i}`)));
  t.is(outcomes.filter((o) => o.status === "fulfilled").length, 2);
  t.true(outcomes.every((o) => o.status === "fulfilled" || o.reason instanceof QueryBudgetSpentError));
});
