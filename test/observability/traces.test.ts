/**
 * Traces across the processes, as an SRE reads them from the exported spans: a hub, a trust gateway with
 * training on and its data-access service, each a real process exporting OTLP/JSON to a collector in
 * this test; the reference numpy workload in a real container on the real Docker engine. A researcher's
 * call (with a traceparent of its own) must lead, through the task outbox and the link, to every service
 * that worked on it, and a training round from the hub's round to the container's runtime calls and back
 * to the hub's average.
 */
import { randomBytes } from "node:crypto";
import anyTest, { type TestFn } from "ava";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { JobService, JobState, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Health } from "@flip/gen/health/v1/health_pb.js";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { ensureWorkloadImages, WORKLOAD_IMAGES } from "../../tools/src/images/ensure-images.js";
import { authedClient, type DemoAccounts } from "../../tools/src/demo/demo-accounts.js";
import { approveAtEveryTrust, approvedEverywhere, TRAINING_COHORT_SQL, workloadFiles } from "../../tools/src/demo/training.js";
import { ADMIN_TOKEN, linked, startGatewayProc, startHubProc, type GatewayProc, type HubProc } from "../support/link.js";
import { spawnService, type ServiceProcess } from "../support/processes.js";
import { OtlpCollector, orphans, treeOf, type CollectedSpan } from "./collector.js";

const INTERNAL_KEY = "traces-test-internal-key-0123456789";
const SERVER = 2;
const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

interface Ctx {
  collector: OtlpCollector;
  dbs: TestDatabase[];
  hub: HubProc;
  dataAccess: ServiceProcess;
  gateway: GatewayProc;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  t.timeout(600_000, "the workload image may need building");
  const engine = await ensureDockerEngine({ log });
  await ensureWorkloadImages(engine, { names: ["train-numpy"], log });
  const collector = await OtlpCollector.start();
  const hubDb = await createTestDatabase("hub");
  const omopDb = await createTestDatabase("omop_traces");
  await generateOmop(omopDb.url, { seed: 5, persons: 600, profile: "north" });
  const tracing = collector.serviceEnv();
  const hub = await startHubProc({ databaseUrl: hubDb.url, telemetry: true, env: tracing });
  t.context = { collector, dbs: [hubDb, omopDb], hub } as Ctx;
  const admin = createClient(TrustService, createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(ADMIN_TOKEN)] }));
  const { apiKey } = await admin.registerTrust({ name: "north hospital", code: "north", region: "test" });
  t.context.dataAccess = spawnService({
    name: "data-access north",
    entry: "services/data-access/src/server.ts",
    telemetry: true,
    env: { ...tracing, FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0", FLIP_DATA_ACCESS_DATABASE_URL: omopDb.url, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY, FLIP_LOG_LEVEL: "info" },
  });
  const dataAccessUrl = String((await t.context.dataAccess.waitForLog("data-access listening", { timeoutMs: 60_000 })).url);
  t.context.gateway = startGatewayProc({
    hubUrl: hub.url,
    trustCode: "north",
    key: apiKey,
    telemetry: true,
    env: {
      ...tracing,
      FLIP_DATA_ACCESS_URL: dataAccessUrl,
      FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY,
      FLIP_TRAINING: "on",
      DOCKER_HOST: engine.host,
      FLIP_TRAINING_IMAGES: "flip/*",
      FLIP_TRAINING_MEMORY_MIB: "512",
    },
  });
  await linked(t.context.gateway, 0, 60_000);
});

test.after.always(async (t) => {
  await t.context.gateway?.proc.stop();
  await t.context.dataAccess?.stop();
  await t.context.hub?.proc.stop();
  await t.context.collector?.close();
  for (const db of t.context.dbs ?? []) await db.drop();
});

/** A traceparent as a researcher's client would send it: the trace id it starts and its own span's id. */
function researcherTrace(): { traceId: string; spanId: string; headers: { traceparent: string } } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, headers: { traceparent: `00-${traceId}-${spanId}-01` } };
}

/**
 * The trace once complete: it holds a span for each of `needs`, and the parent of every span but its root,
 * whose parent is `rootParent` (the researcher's span, never exported) or none.
 */
function completeTrace(ctx: Ctx, what: string, traceId: string, needs: ((s: CollectedSpan) => boolean)[], rootParent?: string): Promise<CollectedSpan[]> {
  return ctx.collector.waitFor(what, (spans) => {
    const trace = spans.filter((s) => s.traceId === traceId);
    return needs.every((need) => trace.some(need)) && orphans(trace).every((s) => s.parentSpanId === rootParent) ? trace : undefined;
  });
}

const span = (service: string, name: string, attributes: Record<string, string | number> = {}) => (s: CollectedSpan) =>
  s.service === service && s.name === name && Object.entries(attributes).every(([k, v]) => s.attributes[k] === v);

function one(trace: readonly CollectedSpan[], match: (s: CollectedSpan) => boolean, what: string): CollectedSpan {
  const found = trace.filter(match);
  if (found.length !== 1) throw new Error(`expected one ${what} in the trace, found ${found.length}:\n${treeOf(trace)}`);
  return found[0]!;
}

const parentOf = (trace: readonly CollectedSpan[], s: CollectedSpan) => trace.find((p) => p.spanId === s.parentSpanId);

const cohorts = (ctx: Ctx): Client<typeof CohortService> => authedClient(ctx.hub.url, CohortService, ADMIN_TOKEN);

test.serial("a cohort query is one trace from the researcher's call through the hub, the link and the gateway to data-access and back", async (t) => {
  const ctx = t.context;
  const { project } = await authedClient(ctx.hub.url, ProjectService, ADMIN_TOKEN).createProject({ name: "traced cohort" });
  const researcher = researcherTrace();
  const { query } = await cohorts(ctx).submitCohortQuery({ projectId: project!.id, sql: TRAINING_COHORT_SQL }, { headers: researcher.headers });
  const answered = await eventually(() => cohorts(ctx).getCohortQuery({ queryId: query!.id }), (r) => r.query!.answers[0]!.state !== TrustAnswerState.PENDING, {
    timeoutMs: 60_000,
    what: "north's answer",
  });
  t.is(answered.query!.answers[0]!.state, TrustAnswerState.OK);

  const trace = await completeTrace(ctx, "the cohort query's trace, complete", researcher.traceId, [
    span("data-access", "flip.dataaccess.v1.DataAccessService/GetCohortStatistics"),
    span("hub", "link.result"),
  ], researcher.spanId);
  t.log(treeOf(trace));
  const root = one(trace, span("hub", "flip.hub.v1.CohortService/SubmitCohortQuery"), "hub RPC span");
  t.deepEqual(orphans(trace), [root], "every span but the hub's RPC has its parent in the trace");
  t.is(root.parentSpanId, researcher.spanId, "the hub's RPC continues the researcher's call");
  t.deepEqual([...new Set(trace.map((s) => s.service))].sort(), ["data-access", "hub", "trust-gateway"]);

  const offer = one(trace, span("hub", "link.offer", { "flip.task_kind": "cohort_query", "flip.trust": "north" }), "offer");
  t.is(parentOf(trace, offer), root, "the task stored by the RPC is offered in the RPC's trace (the outbox keeps the context)");
  const task = one(trace, span("trust-gateway", "gateway.task", { "flip.task_kind": "cohort_query", "flip.trust": "north" }), "gateway task");
  t.is(parentOf(trace, task), offer);
  const statistics = one(trace, (s) => s.service === "data-access" && s.kind === SERVER && s.name.endsWith("/GetCohortStatistics"), "data-access server span");
  t.is(parentOf(trace, parentOf(trace, statistics)!), task, "data-access serves the gateway's call made for the task");
  const result = one(trace, span("hub", "link.result"), "result");
  t.is(parentOf(trace, result), task, "the hub records the result in the gateway's trace");
  t.false(JSON.stringify(trace).includes("omop.person"), "no span carries the query's SQL");

  // pino lines written inside a span carry its ids.
  const recorded = await ctx.hub.proc.waitForLog((r) => r.msg === "task result recorded" && r.trace_id === researcher.traceId);
  t.is(recorded.span_id, result.spanId, "the hub's log line names the span that recorded the result");
  const finished = await ctx.gateway.proc.waitForLog((r) => r.msg === "task finished" && r.trace_id === researcher.traceId);
  t.is(finished.span_id, task.spanId, "the gateway's log line names the task's span");
});

test.serial("a training round is one trace from the hub's round to the workload's runtime calls in its container and back to the hub's average", async (t) => {
  t.timeout(300_000);
  const ctx = t.context;
  const admin = { email: "bootstrap", token: ADMIN_TOKEN };
  const accounts: DemoAccounts = { admin, researcher: admin, trustAdmins: new Map([["north", admin]]), created: [] };
  const as = <S extends Parameters<typeof authedClient>[1]>(token: string, s: S) => authedClient(ctx.hub.url, s, token);
  const project = await approvedEverywhere(as, accounts, { name: "traced training", description: "traces test", queryName: "T2D", sql: TRAINING_COHORT_SQL });
  await approveAtEveryTrust(as, accounts, project.projectId, project.trusts);
  const { model } = await as(ADMIN_TOKEN, ModelService).createModel({
    projectId: project.projectId,
    name: "traced-logreg",
    image: WORKLOAD_IMAGES.numpy,
    files: await workloadFiles("train-numpy"),
    configJson: JSON.stringify({ local_epochs: 1, data: "cohort", label_column: "hypertension", feature_columns: ["year_of_birth", "male", "visits"] }),
  });
  const researcher = researcherTrace();
  const jobs = as(ADMIN_TOKEN, JobService);
  const { job } = await jobs.createJob({ modelId: model!.id, trusts: ["north"], rounds: 2, roundTimeoutSeconds: 120 }, { headers: researcher.headers });
  const jobId = job!.id;
  const done = await eventually(() => jobs.getJob({ jobId }), (r) => r.job!.state >= JobState.COMPLETED, { timeoutMs: 180_000, what: "the job to end" });
  t.is(done.job!.state, JobState.COMPLETED, done.job!.endReason);

  const runtime = (method: string) => span("trust-gateway", `flip.runtime.v1.RuntimeService/${method}`);
  const round1 = await completeTrace(ctx, "round 1's trace, complete", researcher.traceId, [
    span("hub", "training.open_round", { "flip.job_id": jobId, "flip.round": 1 }),
    span("trust-gateway", "training.round", { "flip.job_id": jobId, "flip.round": 1 }),
    runtime("GetCohort"),
    runtime("PushUpdate"),
    span("hub", "flip.link.v1.ArtifactService/Upload"),
    span("hub", "link.result"),
    span("hub", "training.aggregate", { "flip.job_id": jobId, "flip.round": 1 }),
  ], researcher.spanId);
  t.log(treeOf(round1));
  const root = one(round1, span("hub", "flip.hub.v1.JobService/CreateJob"), "CreateJob span");
  t.deepEqual(orphans(round1), [root], "every span but the researcher's CreateJob has its parent in the trace");
  const opened = one(round1, span("hub", "training.open_round"), "round opening");
  t.is(parentOf(round1, opened), root, "the scheduler's start of the job continues the call that created it");
  const gatewayRound = one(round1, span("trust-gateway", "training.round"), "gateway round");
  const gatewayTask = one(round1, span("trust-gateway", "gateway.task", { "flip.task_kind": "training" }), "gateway task");
  t.is(parentOf(round1, gatewayRound), gatewayTask, "the gateway runs the round in the task's span");
  const offer = one(round1, span("hub", "link.offer"), "offer");
  t.is(parentOf(round1, gatewayTask), offer);
  t.is(parentOf(round1, offer), opened, "the round's task continues the round the hub opened");
  for (const method of ["GetConfig", "GetCohort", "GetGlobalWeights", "ReportMetrics", "PushUpdate"]) {
    const calls = round1.filter(runtime(method));
    t.true(calls.length > 0, `the workload's ${method} is in the round's trace`);
    for (const call of calls) t.is(parentOf(round1, call), gatewayRound, `${method} continues the TRACEPARENT the container was given`);
  }
  const rows = one(round1, (s) => s.service === "data-access" && s.kind === SERVER && s.name.endsWith("/GetCohortRows"), "data-access rows");
  t.is(parentOf(round1, parentOf(round1, rows)!)?.name, "flip.runtime.v1.RuntimeService/GetCohort", "data-access serves the rows in the workload's call");
  const upload = one(round1, span("hub", "flip.link.v1.ArtifactService/Upload"), "update upload");
  t.is(parentOf(round1, upload), gatewayRound, "the update is uploaded in the gateway's round");
  t.is(parentOf(round1, one(round1, span("hub", "training.aggregate"), "aggregation")), opened, "the hub's average ends the round's trace");

  // Round 2 is a trace of its own, linked to the job and to the average that opened it; the workload,
  // in the same container, continues it from the answer that handed it the round.
  const aggregate1 = one(round1, span("hub", "training.aggregate"), "aggregation");
  const open2 = await ctx.collector.waitFor("round 2's opening", (spans) => spans.find(span("hub", "training.open_round", { "flip.job_id": jobId, "flip.round": 2 })));
  t.is(open2.parentSpanId, undefined, "round 2 starts a trace");
  t.deepEqual(open2.links.map((l) => l.spanId).sort(), [root.spanId, aggregate1.spanId].sort(), "linked to the job's call and to round 1's average");
  const round2 = await completeTrace(ctx, "round 2's trace, complete", open2.traceId, [
    span("trust-gateway", "training.round", { "flip.round": 2 }),
    runtime("PushUpdate"),
    span("hub", "training.aggregate", { "flip.round": 2 }),
  ]);
  t.log(treeOf(round2));
  t.deepEqual(orphans(round2), [], "every span of round 2 has its parent in the trace");
  t.deepEqual(round2.filter((s) => s.parentSpanId === undefined), [open2], "the round's opening is the trace's one root");
  const gatewayRound2 = one(round2, span("trust-gateway", "training.round"), "gateway round 2");
  for (const call of round2.filter(runtime("PushUpdate"))) t.is(parentOf(round2, call), gatewayRound2);
  t.false(
    [...round1, ...round2].some((s) => Object.values(s.attributes).some((v) => typeof v === "string" && /select|omop\./i.test(v))),
    "no span carries SQL",
  );
});

test.serial("a service stopped with SIGTERM exports the spans still waiting in its batch before it exits", async (t) => {
  const ctx = t.context;
  const omopUrl = ctx.dbs[1]!.url;
  // A batch delay far longer than the test: only the shutdown can send the span.
  const proc = spawnService({
    name: "data-access (stopping)",
    entry: "services/data-access/src/server.ts",
    telemetry: true,
    env: { ...ctx.collector.serviceEnv(), OTEL_BSP_SCHEDULE_DELAY: "600000", FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0", FLIP_DATA_ACCESS_DATABASE_URL: omopUrl, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY },
  });
  const url = String((await proc.waitForLog("data-access listening", { timeoutMs: 60_000 })).url);
  const caller = researcherTrace();
  await createClient(Health, createGrpcTransport({ baseUrl: url })).check({}, { headers: caller.headers });
  t.is((await proc.stop()).code, 0);
  const exported = ctx.collector.trace(caller.traceId);
  t.deepEqual(exported.map((s) => `${s.service} ${s.name}`), ["data-access grpc.health.v1.Health/Check"]);
});
