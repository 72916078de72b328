import { Writable } from "node:stream";
import test from "ava";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DataAccessService, GetCohortStatisticsResponseSchema, QueryRejectionSchema } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import { CohortOutcome } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "@flip/gen/health/v1/health_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { sampleValue, scrape } from "@flip/shared/testing/metrics-scrape.js";
import { createDataAccessClient, type DataAccessClient } from "./client.js";
import { CohortBelowThresholdError, CohortNotFoundError } from "./cohorts/errors.js";
import { toConnectError } from "./connect.js";
import { startDataAccess, type RunningDataAccess } from "./data-access.js";
import { QueryBudgetSpentError } from "./cohorts/query-guard.js";
import { DatabaseUnavailableError, DataDependentFailureError, QueryFailedError, ResultTooLargeError, StatementTimeoutError } from "./execution/errors.js";
import { PolicyDeniedError } from "./policy/policy.js";
import { createOmopFixture, type OmopFixture } from "./testing/omop-fixture.js";
import { QueryRejectedError } from "./validation/rejection.js";

const KEY = "test-internal-key-0123456789";
const logLines: string[] = [];
const log = createLogger({
  service: "data-access",
  level: "info",
  destination: new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
});

let fx: OmopFixture;
let service: RunningDataAccess;
let client: DataAccessClient;

test.before(async () => {
  fx = await createOmopFixture({ persons: 600, seed: 5 });
  service = await startDataAccess(
    {
      host: "127.0.0.1",
      port: 0,
      databaseUrl: fx.db.url,
      readerUrl: undefined,
      internalKey: KEY,
      threshold: 10,
      statementTimeoutMs: 1_500,
      maxRows: 100_000,
      policy: { minCohortSize: 0, queryBudgetPerDay: 200, rules: [{ id: "blocked-project", action: "cohort.statistics", effect: "deny", projects: ["blocked"] }] },
      logLevel: "info",
      metrics: { host: "127.0.0.1", port: 0 },
    },
    log,
  );
  client = createDataAccessClient({ baseUrl: service.url, internalKey: KEY });
});

test.after.always(async () => {
  await service?.close();
  await fx?.close();
});

async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await call;
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, message: err.rawMessage };
  }
  throw new Error("the call succeeded");
}

test("a call without the internal key, or with a wrong one, is unauthenticated", async (t) => {
  const wrong = createDataAccessClient({ baseUrl: service.url, internalKey: "not-the-key-at-all" });
  t.is((await codeOf(wrong.validateQuery({ sql: "select 1" }))).code, Code.Unauthenticated);
  const none = createClient(DataAccessService, createGrpcTransport({ baseUrl: service.url }));
  t.is((await codeOf(none.getCohortStatistics({ projectId: "p", sql: "select 1" }))).code, Code.Unauthenticated);
});

test("health checks answer without the key, so probes work", async (t) => {
  const health = createClient(Health, createGrpcTransport({ baseUrl: service.url }));
  t.is((await health.check({})).status, HealthCheckResponse_ServingStatus.SERVING);
});

test("/metrics counts cohort statistics queries by outcome, with no project, query or SQL in it", async (t) => {
  const suppressed = async () => sampleValue(await scrape(service.metricsUrl!), "flip_data_access_cohort_queries_total", { outcome: "suppressed" }) ?? 0;
  const before = await suppressed();
  const r = await client.getCohortStatistics({ projectId: "metrics-project", queryId: "metrics-query", sql: "select person_id from person order by person_id limit 3" });
  t.is(r.statistics!.outcome, CohortOutcome.SUPPRESSED);
  t.true((await suppressed()) >= before + 1);
  const body = await scrape(service.metricsUrl!);
  t.true(sampleValue(body, "flip_data_access_cohort_query_seconds_count", { outcome: "suppressed" })! >= 1);
  t.true(sampleValue(body, "flip_http2_sessions_open")! >= 1, "the client's connection is counted");
  t.false(/metrics-project|metrics-query|person/.test(body));
});

test("bad SQL is an invalid argument that names the broken rule", async (t) => {
  const r = await codeOf(client.getCohortStatistics({ projectId: "p", sql: "select * from pg_authid" }));
  t.is(r.code, Code.InvalidArgument);
  t.regex(r.message, /query rejected \(omop_schema_only\): table pg_authid/);
  const v = await codeOf(client.validateQuery({ sql: "delete from person" }));
  t.regex(v.message, /\(no_writes\)/);
});

test("a rejected query carries its rule as a typed error detail, for tools that branch on it", async (t) => {
  const rules = async (call: Promise<unknown>) => {
    const e = await t.throwsAsync(call);
    return ConnectError.from(e).findDetails(QueryRejectionSchema).map((d) => d.rule);
  };
  t.deepEqual(await rules(client.validateQuery({ sql: "delete from person" })), ["no_writes"]);
  t.deepEqual(await rules(client.getCohortStatistics({ projectId: "p", sql: "select pg_read_file('/etc/passwd')" })), ["function_not_allowed"]);
  t.deepEqual(await rules(client.validateQuery({ sql: "select 1; select 2" })), ["single_statement"]);
});

test("a missing field is an invalid argument that names it", async (t) => {
  t.deepEqual(await codeOf(client.getCohortStatistics({ projectId: "", sql: "select 1" })), { code: Code.InvalidArgument, message: "project_id is required" });
  t.deepEqual(await codeOf(client.freezeCohort({ projectId: "p", sql: "  " })), { code: Code.InvalidArgument, message: "sql is required" });
});

test("validation returns the normalised query and the tables it reads", async (t) => {
  const r = await client.validateQuery({ sql: "select count(*) from person p join death d using (person_id)" });
  t.is(r.normalizedSql, "SELECT count(*) FROM (omop.person AS p INNER JOIN omop.death AS d USING (person_id))");
  t.deepEqual(r.tables, ["omop.death", "omop.person"]);
});

test("statistics come back for a valid query, with no row-level value in them", async (t) => {
  const sql =
    "select p.person_id, p.person_source_value, p.gender_concept_id, p.year_of_birth, io.accession_id, io.modality_source_value from person p left join image_occurrence io on io.person_id = p.person_id";
  const r = await client.getCohortStatistics({ projectId: "p1", queryId: "q1", sql });
  const stats = r.statistics!;
  t.is(stats.outcome, CohortOutcome.OK);
  t.is(stats.threshold, 10);
  t.true(stats.recordCount >= 600n);
  t.deepEqual(
    stats.columns.map((c) => [c.name, c.summary.case]),
    [
      ["person_id", undefined],
      ["person_source_value", undefined],
      ["gender_concept_id", "categorical"],
      ["year_of_birth", "numeric"],
      ["accession_id", undefined],
      ["modality_source_value", "categorical"],
    ],
  );
  const json = toJsonString(GetCohortStatisticsResponseSchema, r);
  const identifiers = await fx.owner.query<{ v: string }>(
    "select person_source_value as v from omop.person union all select accession_id from omop.image_occurrence",
  );
  t.false(
    identifiers.rows.some((row) => json.includes(`"${row.v}"`)),
    "no identifier value appears in the response",
  );
  for (const col of stats.columns) {
    if (col.summary.case === "categorical") t.true(col.summary.value.categories.every((c) => c.count >= 10n));
  }
});

test("a cohort below the threshold is suppressed: no count and no columns", async (t) => {
  const r = await client.getCohortStatistics({ projectId: "p1", sql: "select person_id, year_of_birth from person where person_id <= 4" });
  t.is(r.statistics?.outcome, CohortOutcome.SUPPRESSED);
  t.is(r.statistics?.recordCount, 0n);
  t.deepEqual(r.statistics?.columns, []);
});

test("the hub's min_count raises the applied threshold", async (t) => {
  const r = await client.getCohortStatistics({ projectId: "p1", sql: "select person_id from person where person_id <= 30", minCount: 50 });
  t.is(r.statistics?.outcome, CohortOutcome.SUPPRESSED);
  t.is(r.statistics?.threshold, 50);
});

test("the trust's policy refusing a project is permission denied, without the rule id", async (t) => {
  const r = await codeOf(client.getCohortStatistics({ projectId: "blocked", sql: "select person_id from person" }));
  t.is(r.code, Code.PermissionDenied);
  t.false(r.message.includes("blocked-project"));
});

test("a query past the statement timeout is deadline exceeded", async (t) => {
  const r = await codeOf(client.getCohortStatistics({ projectId: "p1", sql: "select count(*) from generate_series(1, 2000000000)" }));
  t.is(r.code, Code.DeadlineExceeded);
  t.regex(r.message, /^the query ran longer than the trust's 1500 ms limit/);
});

test("a syntax error is an invalid argument that gives its position", async (t) => {
  const r = await codeOf(client.getCohortStatistics({ projectId: "p1", sql: "select person_id frm person" }));
  t.is(r.code, Code.InvalidArgument);
  t.regex(r.message, /^query rejected \(parse_error\): .*\(at character \d+\)/);
});

test("a query that fails on the data is answered like a suppressed cohort, with no SQLSTATE", async (t) => {
  const failing = await client.getCohortStatistics({ projectId: "wire", sql: "select person_id, cast(case when person_id = 42 then 'x' else '1' end as integer) as v from person" });
  const small = await client.getCohortStatistics({ projectId: "wire", sql: "select person_id from person where person_id <= 2" });
  t.deepEqual(toJsonString(GetCohortStatisticsResponseSchema, failing), toJsonString(GetCohortStatisticsResponseSchema, small));
});

test("a project's query budget is reported, and counts each statistics query", async (t) => {
  const before = await client.getQueryBudget({ projectId: "budgeted" });
  t.like(before, { perDay: 200, used: 0, remaining: 200 });
  t.true(new Date(before.resetsAt).getTime() > Date.now());
  await client.getCohortStatistics({ projectId: "budgeted", sql: "select person_id from person" });
  t.like(await client.getQueryBudget({ projectId: "budgeted" }), { used: 1, remaining: 199 });
  t.is((await codeOf(client.getQueryBudget({ projectId: "" }))).code, Code.InvalidArgument);
});

test("a frozen cohort is counted, streamed and listed through the service", async (t) => {
  const frozen = await client.freezeCohort({ projectId: "e2e", queryId: "q1", sql: "select person_id, year_of_birth, gender_concept_id from person where person_id <= 100" });
  t.is(frozen.cohort?.personCount, 100n);
  const status = await client.getFrozenCohort({ projectId: "e2e" });
  t.is(status.presentPersonCount, 100n);
  t.notThrows(() => new Date(status.frozenAt).toISOString());
  let rows = 0;
  for await (const batch of client.getCohortRows({ projectId: "e2e", batchSize: 30 })) {
    t.deepEqual(batch.columns, ["person_id", "year_of_birth", "gender_concept_id"]);
    for (const row of batch.rows) t.true(row.values.every((v) => typeof JSON.parse(v) === "number"));
    rows += batch.rows.length;
  }
  t.is(rows, 100);
  const accessions = await client.listCohortAccessions({ projectId: "e2e" });
  t.true(accessions.accessionNumbers.every((a) => a.startsWith("ACCNORTH")));
});

test("rows of an unknown project are not found, and of a tiny cohort a failed precondition", async (t) => {
  t.is((await codeOf(client.getFrozenCohort({ projectId: "nobody" }))).code, Code.NotFound);
  await client.freezeCohort({ projectId: "tiny", sql: "select person_id from person where person_id <= 3" });
  const rows = async () => {
    for await (const _ of client.getCohortRows({ projectId: "tiny" })) void _;
  };
  t.is((await codeOf(rows())).code, Code.FailedPrecondition);
  t.is((await codeOf(client.listCohortAccessions({ projectId: "tiny" }))).code, Code.FailedPrecondition);
});

test("researchers' SQL never reaches the logs", async (t) => {
  const marker = "select person_id, 'log-canary-7731' as canary from person";
  await client.getCohortStatistics({ projectId: "p1", sql: marker });
  await codeOf(client.getCohortStatistics({ projectId: "p1", sql: `${marker} where pg_sleep(1) is null` }));
  t.false(logLines.some((l) => l.includes("log-canary-7731")));
  t.true(logLines.some((l) => l.includes('"rpc":"GetCohortStatistics"')));
});

test("each domain failure maps to its Connect code", (t) => {
  const quiet = createLogger({ service: "t", level: "silent" });
  const code = (e: unknown) => toConnectError(e, quiet, "Test", {}).code;
  t.is(code(new QueryRejectedError("select_only", "x")), Code.InvalidArgument);
  t.is(code(new PolicyDeniedError("cohort.rows", "p", "r")), Code.PermissionDenied);
  t.is(code(new StatementTimeoutError(10)), Code.DeadlineExceeded);
  t.is(code(new DatabaseUnavailableError()), Code.Unavailable);
  t.is(code(new ResultTooLargeError(10)), Code.ResourceExhausted);
  t.is(code(new QueryBudgetSpentError(5, new Date())), Code.ResourceExhausted);
  t.is(code(new DataDependentFailureError("22012")), Code.InvalidArgument);
  t.is(code(new QueryFailedError("42703", "the query failed: column x does not exist")), Code.InvalidArgument);
  t.is(code(new CohortNotFoundError("p")), Code.NotFound);
  t.is(code(new CohortBelowThresholdError()), Code.FailedPrecondition);
  const internal = toConnectError(new Error("secret detail at /srv/x.ts:1"), quiet, "Test", {});
  t.deepEqual([internal.code, internal.rawMessage], [Code.Internal, "internal error"]);
});
