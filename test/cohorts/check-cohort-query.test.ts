/**
 * CheckCohortQuery through a real hub: the hub's pre-check and the trusts' default rules, reported as
 * problems a person can act on while writing a query, without running or storing anything.
 */
import anyTest, { type TestFn } from "ava";
import { Code } from "@connectrpc/connect";
import { CohortService, type CohortQueryProblem } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  hub: TestHub;
  check(sql: string): Promise<Pick<CohortQueryProblem, "rule" | "message" | "refusedByHub">[]>;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const hub = await startTestHub();
  const admin = (await hub.firstAdmin()).token;
  const viewer = (await hub.user(admin, "viewer@check.test", [{ role: Role.VIEWER }])).token;
  const cohorts = hub.client(CohortService, viewer);
  t.context = {
    hub,
    async check(sql) {
      const { problems } = await cohorts.checkCohortQuery({ sql });
      return problems.map(({ rule, message, refusedByHub }) => ({ rule, message, refusedByHub }));
    },
  };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

const GOOD = `select p.person_id, c.concept_name as sex, (p.year_of_birth / 10) * 10 as birth_decade
from omop.person p join omop.concept c on c.concept_id = p.gender_concept_id
where exists (select 1 from omop.condition_occurrence co where co.person_id = p.person_id and co.condition_concept_id = 201826)`;

test("a query the default rules accept has no problems", async (t) => {
  t.deepEqual(await t.context.check(GOOD), []);
});

test("SQL that does not parse is a parse_error the hub itself refuses, with the trust's message", async (t) => {
  const problems = await t.context.check("selec person_id from omop.person");
  t.is(problems.length, 1, "the hub's and the trusts' parse errors are reported once");
  t.is(problems[0]!.rule, "parse_error");
  t.true(problems[0]!.refusedByHub);
  t.regex(problems[0]!.message, /not valid PostgreSQL: syntax error at or near "selec"/);
});

test("a write is refused by the trusts' no_writes rule, and the hub would still send it", async (t) => {
  t.deepEqual(await t.context.check("delete from omop.person"), [
    { rule: "no_writes", message: "DELETE is not allowed: cohort queries may only read", refusedByHub: false },
  ]);
});

test("a table outside the omop schema breaks omop_schema_only", async (t) => {
  const problems = await t.context.check("select id, email from public.app_user");
  t.is(problems.length, 1);
  t.is(problems[0]!.rule, "omop_schema_only");
  t.false(problems[0]!.refusedByHub);
  t.regex(problems[0]!.message, /public\.app_user is outside schema omop/);
});

test("empty SQL and two statements break single_statement at the hub", async (t) => {
  const [empty] = await t.context.check("   ");
  t.like(empty, { rule: "single_statement", refusedByHub: true });
  const two = await t.context.check("select person_id from omop.person; select person_id from omop.person");
  t.like(two[0], { rule: "single_statement", refusedByHub: true });
});

test("SQL over the trusts' length limit is a max_length problem, not an error", async (t) => {
  const long = `select person_id from omop.person where person_id in (${Array.from({ length: 3000 }, (_, i) => i).join(",")})`;
  t.true(long.length > 10_240 && long.length < 100_000);
  const problems = await t.context.check(long);
  t.like(problems[0], { rule: "max_length", refusedByHub: true });
  t.is(problems.length, 1);
});

test("SQL over the request limit is INVALID_ARGUMENT naming the field", async (t) => {
  const err = await connectErrorOf(t.context.check(`select ${"1".repeat(100_001)}`));
  t.is(err.code, Code.InvalidArgument);
  t.regex(err.rawMessage, /^sql\b/);
});

test("a caller without a credential is refused", async (t) => {
  const anonymous = t.context.hub.client(CohortService);
  const err = await connectErrorOf(anonymous.checkCohortQuery({ sql: GOOD }));
  t.is(err.code, Code.Unauthenticated);
});
