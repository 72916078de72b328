/**
 * Imaging end to end, each service a real process over real HTTP/2: a hub, a trust's gateway and imaging
 * service, its data-access with synthetic OMOP data, a PACS Orthanc and a research-store Orthanc.
 * Approval freezes the cohort and starts the import; the hub sees counts only; withdrawing the approval
 * deletes the research copies at the trust.
 */
import anyTest, { type TestFn } from "ava";
import pg from "pg";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ImagingService, ImagingState } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { DecisionState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { ADMIN_TOKEN, linked, startGatewayProc, startHubProc, type GatewayProc, type HubProc } from "../support/link.js";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { imagingEnv, INTERNAL_KEY, orthancInstances, startImagingWorld, type ImagingWorld } from "./support.js";

interface Ctx {
  world: ImagingWorld;
  hubDb: TestDatabase;
  hub: HubProc;
  imaging: ServiceProcess;
  gateway: GatewayProc;
  projects: Client<typeof ProjectService>;
  imagingStatus: Client<typeof ImagingService>;
  projectId: string;
  missing: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  let missing = "";
  const world = await startImagingWorld({
    cohortSize: 12,
    projects: [],
    pacsLayout: (studies) => {
      missing = studies[3]!.accession;
      return { missing: [missing] };
    },
  });
  const hubDb = await createTestDatabase("hub");
  const hub = await startHubProc({ databaseUrl: hubDb.url });
  const transport = createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] });
  const { apiKey } = await createClient(TrustService, transport).registerTrust({ name: "North General", code: "north", region: "test" });
  const imaging = spawnService({ name: "imaging north", entry: "services/imaging/src/server.ts", env: imagingEnv(world, { FLIP_LOG_LEVEL: "info" }) });
  const imagingUrl = String((await imaging.waitForLog("imaging listening", { timeoutMs: 60_000 })).url);
  const gateway = startGatewayProc({
    hubUrl: hub.url,
    trustCode: "north",
    key: apiKey,
    env: { FLIP_DATA_ACCESS_URL: world.dataAccess.url, FLIP_IMAGING_URL: imagingUrl, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY },
  });
  await linked(gateway);
  const projects = createClient(ProjectService, transport);
  const { project } = await projects.createProject({ name: "Imaging e2e", description: "import on approval" });
  t.context = { world, hubDb, hub, imaging, gateway, projects, imagingStatus: createClient(ImagingService, transport), projectId: project!.id, missing };
});

test.after.always(async (t) => {
  await t.context.gateway?.proc.stop();
  await t.context.imaging?.stop();
  await t.context.hub?.proc.stop();
  await t.context.hubDb?.drop();
  await t.context.world?.close();
});

test.serial("approval imports the frozen cohort's studies at the trust; the hub sees counts, never an identifier", async (t) => {
  const { world, projects, imagingStatus, projectId } = t.context;
  const cohorts = createClient(CohortService, createGrpcTransport({ baseUrl: t.context.hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] }));
  const { query } = await cohorts.submitCohortQuery({ projectId, name: "imaging cohort", sql: world.cohortSql });
  let answered = query!;
  for await (const { query: q } of cohorts.watchCohortQuery({ queryId: query!.id }, { timeoutMs: 60_000 })) if (q) answered = q;
  t.is(answered.answers[0]!.state, TrustAnswerState.OK, answered.answers[0]!.error);
  await projects.stageProject({ projectId, trusts: ["north"] });
  await projects.decideProject({ projectId, trust: "north", decision: DecisionState.APPROVED, reason: "ethics approval 42" });

  const done = await eventually(
    async () => (await imagingStatus.getImagingStatus({ projectId })).trusts[0],
    (s) => s?.state === ImagingState.DONE,
    { timeoutMs: 120_000, everyMs: 250, what: "north's import finishing" },
  );
  const c = done!.counts!;
  t.is(Number(c.studiesRequested), world.studies.length);
  t.is(Number(c.studiesImported), world.studies.length - 1);
  t.is(Number(c.studiesNotFound), 1);
  t.true(Number(c.imagesStored) > 0);

  // Nothing in the hub's database names a study, a patient or a UID of the trust's.
  const db = new pg.Client({ connectionString: t.context.hubDb.url });
  await db.connect();
  try {
    const tables = (await db.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'")).rows.map((r) => r.tablename);
    let dump = "";
    for (const table of tables) dump += JSON.stringify((await db.query(`select * from "${table}"`)).rows);
    for (const s of world.studies) {
      t.false(dump.includes(s.accession), `the hub must not hold accession ${s.accession}`);
      t.false(dump.includes(s.patientId), `the hub must not hold patient id ${s.patientId}`);
    }
    t.false(dump.includes("TESTPERSON"));
    t.false(dump.includes("1.2.826.0.1.3680043.10.543"), "no study UID of the trust's");
  } finally {
    await db.end();
  }
});

test.serial("withdrawing the approval deletes the project's research copies at the trust", async (t) => {
  const { world, projects, imagingStatus, projectId } = t.context;
  t.true((await orthancInstances(world.store)).size > 0);
  await projects.withdrawApproval({ projectId, trust: "north", reason: "consent withdrawn by the ethics committee" });
  const deleted = await eventually(
    async () => (await imagingStatus.getImagingStatus({ projectId })).trusts[0],
    (s) => s?.state === ImagingState.DELETED,
    { timeoutMs: 60_000, everyMs: 250, what: "north deleting the copies" },
  );
  t.is(deleted!.state, ImagingState.DELETED);
  t.is((await orthancInstances(world.store)).size, 0, "the research store holds none of the project's images");
});
