/**
 * Cohort discovery end to end, every service a real process over real HTTP/2: a hub, two trusts with
 * different synthetic OMOP data (gateway + data-access each), one trust whose policy refuses the query,
 * and one registered trust that never connects.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import pg from "pg";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CohortService, TrustAnswerState, type CohortQuery } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { ADMIN_TOKEN, linked, startGatewayProc, startHubProc, type GatewayProc, type HubProc } from "../support/link.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

const INTERNAL_KEY = "trust-internal-key-for-tests-0123";

interface Ctx {
  dbs: TestDatabase[];
  hub: HubProc;
  omop: Record<string, string>;
  processes: ServiceProcess[];
  gateways: GatewayProc[];
  cohorts: Client<typeof CohortService>;
  projectId: string;
}
const test = anyTest as TestFn<Ctx>;

async function startTrust(ctx: Ctx, code: string, apiKey: string, omopUrl: string, policy?: unknown): Promise<void> {
  const env: Record<string, string> = {
    FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0",
    FLIP_DATA_ACCESS_DATABASE_URL: omopUrl,
    FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY,
    FLIP_LOG_LEVEL: "info",
  };
  if (policy) {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), "flip-policy-")), "policy.json");
    writeFileSync(file, JSON.stringify(policy));
    env.FLIP_DATA_ACCESS_POLICY_FILE = file;
  }
  const dataAccess = spawnService({ name: `data-access ${code}`, entry: "services/data-access/src/server.ts", env });
  ctx.processes.push(dataAccess);
  const url = String((await dataAccess.waitForLog("data-access listening", { timeoutMs: 60_000 })).url);
  const gateway = startGatewayProc({ hubUrl: ctx.hub.url, trustCode: code, key: apiKey, env: { FLIP_DATA_ACCESS_URL: url, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY } });
  ctx.gateways.push(gateway);
  await linked(gateway);
}

/** What the trust's own database says, for comparing with what the researcher is shown. */
async function countAt(omopUrl: string, sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: omopUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>(`select count(*) as n from (${sql}) q`);
    return Number(rows[0]!.n);
  } finally {
    await c.end();
  }
}

async function ask(ctx: Ctx, sql: string): Promise<Record<string, CohortQuery["answers"][number]> & { $total: bigint }> {
  const { query } = await ctx.cohorts.submitCohortQuery({ projectId: ctx.projectId, sql });
  let last = query!;
  const deadline = Date.now() + 30_000;
  // Two trusts answer; the offline one never does, so watch until both answered rather than "complete".
  for await (const { query: q } of ctx.cohorts.watchCohortQuery({ queryId: query!.id }, { timeoutMs: 30_000 })) {
    last = q!;
    const answered = last.answers.filter((a) => a.state !== TrustAnswerState.PENDING && a.state !== TrustAnswerState.OFFLINE);
    if (answered.length >= 2 || Date.now() > deadline) break;
  }
  return Object.assign(Object.fromEntries(last.answers.map((a) => [a.trustCode, a])), { $total: last.totalRecordCount });
}

test.before(async (t) => {
  const hubDb = await createTestDatabase("hub");
  const northDb = await createTestDatabase("omop_north");
  const southDb = await createTestDatabase("omop_south");
  await generateOmop(northDb.url, { seed: 7, persons: 1500, profile: "north" });
  await generateOmop(southDb.url, { seed: 8, persons: 800, profile: "south" });
  const hub = await startHubProc({ databaseUrl: hubDb.url });
  const admin = createClient(TrustService, createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] }));
  const keys: Record<string, string> = {};
  for (const code of ["north", "south", "east"]) keys[code] = (await admin.registerTrust({ name: `${code} hospital`, code, region: "test" })).apiKey;
  const projects = createClient(ProjectService, createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] }));
  const { project } = await projects.createProject({ name: "Cohort discovery e2e" });
  t.context = {
    dbs: [hubDb, northDb, southDb],
    hub,
    omop: { north: northDb.url, south: southDb.url },
    processes: [],
    gateways: [],
    cohorts: createClient(CohortService, createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] })),
    projectId: project!.id,
  };
  await startTrust(t.context, "north", keys.north!, northDb.url);
  await startTrust(t.context, "south", keys.south!, southDb.url, {
    rules: [{ id: "no-statistics-for-this-project", action: "cohort.statistics", effect: "deny", projects: [project!.id] }],
  });
});

test.after.always(async (t) => {
  for (const g of t.context.gateways ?? []) await g.proc.stop();
  for (const p of t.context.processes ?? []) await p.stop();
  await t.context.hub?.proc.stop();
  for (const db of t.context.dbs ?? []) await db.drop();
});

const DIABETES = `select p.person_id, p.year_of_birth from omop.person p
  where exists (select 1 from omop.condition_occurrence c where c.person_id = p.person_id and c.condition_concept_id = 201826)`;

test.serial("each trust's answer reaches the researcher: a count, a policy refusal, and an offline trust", async (t) => {
  const answers = await ask(t.context, DIABETES);
  const expected = await countAt(t.context.omop.north!, DIABETES);
  t.true(expected >= 10, "the north population has a diabetes cohort above the threshold");
  t.is(answers.north!.state, TrustAnswerState.OK);
  t.is(answers.north!.recordCount, BigInt(expected), "the count equals what north's own database says");
  t.true(answers.north!.columns.length > 0, "distributions come with the count");
  t.is(answers.south!.state, TrustAnswerState.ERROR);
  t.is(answers.south!.error, "denied_by_policy");
  t.is(answers.east!.state, TrustAnswerState.OFFLINE, "a trust whose gateway is not connected shows as offline");
  t.is(answers.$total, BigInt(expected), "the total counts only trusts that answered");
});

test.serial("a cohort smaller than the threshold is suppressed at the trust and never shown", async (t) => {
  const tiny = "select person_id from omop.person order by person_id limit 3";
  const answers = await ask(t.context, tiny);
  t.is(answers.north!.state, TrustAnswerState.SUPPRESSED);
  t.is(answers.north!.recordCount, 0n);
  t.is(answers.north!.columns.length, 0);
});

test.serial("a query that fails on one patient's record reaches the researcher exactly as a suppressed cohort does", async (t) => {
  const failing = await ask(t.context, "select person_id, cast(case when person_id = 42 then 'x' else '1' end as integer) as v from omop.person");
  const tiny = await ask(t.context, "select person_id from omop.person order by person_id limit 4");
  t.is(failing.north!.state, TrustAnswerState.SUPPRESSED);
  t.deepEqual(
    [failing.north!.state, failing.north!.recordCount, failing.north!.columns.length, failing.north!.error],
    [tiny.north!.state, tiny.north!.recordCount, tiny.north!.columns.length, tiny.north!.error],
  );
  // The trust's own ledger says why, and who asked (as the hub names its callers); the researcher never sees it.
  const c = new pg.Client({ connectionString: t.context.omop.north! });
  await c.connect();
  try {
    const { rows } = await c.query<{ rule: string; user_id: string | null }>("select rule, user_id from flip_local.query_ledger order by id desc limit 1");
    t.deepEqual(rows, [{ rule: "data_error", user_id: "bootstrap-admin" }]);
  } finally {
    await c.end();
  }
});

test.serial("a query the trust's validator rejects comes back as invalid_query naming the broken rule", async (t) => {
  const answers = await ask(t.context, "select * from pg_catalog.pg_authid");
  t.is(answers.north!.state, TrustAnswerState.ERROR);
  t.regex(answers.north!.error, /^invalid_query: .*omop/);
  const writes = await ask(t.context, "with x as (delete from omop.person returning person_id) select * from x");
  t.is(writes.north!.state, TrustAnswerState.ERROR);
  t.regex(writes.north!.error, /^invalid_query: /);
  t.true((await countAt(t.context.omop.north!, "select person_id from omop.person")) === 1500, "nothing was deleted");
});

test.serial("answers carry no row-level values: the statistics name columns, never person ids", async (t) => {
  const answers = await ask(t.context, DIABETES);
  const json = JSON.stringify(answers.north!.columns.map((c) => ({ name: c.name, summary: c.summary })), (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  const ids = await new pg.Client({ connectionString: t.context.omop.north! });
  await ids.connect();
  const { rows } = await ids.query<{ person_id: string }>(`${DIABETES} order by 1 limit 20`);
  await ids.end();
  for (const r of rows) t.false(json.includes(`"${r.person_id}"`), `person ${r.person_id} appears in the answer`);
});
