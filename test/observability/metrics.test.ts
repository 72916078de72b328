/**
 * Prometheus metrics as an SRE scrapes them: a hub (in this process) with FLIP_METRICS_ADDR on a free
 * port, trust "north" as a real gateway process over real HTTP/2 with its data-access service, and trust
 * "south" registered but never connected. Work is driven through the hub's RPCs (echo tasks, a cohort
 * query); every /metrics body must pass Debian's `promtool check metrics` with no lint problem and show the
 * values the work implies. The alert rules in deploy/prometheus/alerts.yml pass `promtool check rules`.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TaskService, TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { readDataAccessConfig } from "@flip/data-access/config.js";
import { startDataAccess, type RunningDataAccess } from "@flip/data-access/data-access.js";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { sampleValue, scrape } from "@flip/shared/testing/metrics-scrape.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { FAST_HUB_ENV, linked, startGatewayProc, waitForTask, type GatewayProc } from "../support/link.js";
import { repoRoot } from "../support/processes.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";

const INTERNAL_KEY = "metrics-test-internal-key-0123456789";
const ALERTS = path.join(repoRoot, "deploy/prometheus/alerts.yml");
const SUPPRESSED_SQL = "select person_id from omop.person order by person_id limit 3";
const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
if (!hasPromtool) console.warn("metrics.test.ts: promtool not found, so its checks are skipped (install Debian's prometheus package)");

interface Ctx {
  hub: TestHub;
  omop: TestDatabase;
  dataAccess: RunningDataAccess;
  gateway: GatewayProc;
  gatewayMetricsUrl: string;
  /** What the work created, none of which may appear in an exposition. */
  secrets: string[];
}
const test = anyTest as TestFn<Ctx>;

/** Asserts that `promtool check metrics` accepts the exposition with no lint problem (when promtool is installed). */
function assertPromtoolAccepts(t: ExecutionContext, exposition: string): void {
  if (!hasPromtool) return;
  const r = spawnSync("promtool", ["check", "metrics"], { input: exposition, encoding: "utf8" });
  t.deepEqual({ status: r.status, problems: `${r.stdout}${r.stderr}`.trim() }, { status: 0, problems: "" });
}

test.before(async (t) => {
  const hub = await startTestHub({ ...FAST_HUB_ENV, FLIP_METRICS_ADDR: "127.0.0.1:0" }, log);
  const omop = await createTestDatabase("omop_metrics");
  t.context = { hub, omop } as Ctx;
  await generateOmop(omop.url, { seed: 3, persons: 300, profile: "north" });
  t.context.dataAccess = await startDataAccess(
    readDataAccessConfig({ FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0", FLIP_DATA_ACCESS_DATABASE_URL: omop.url, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY, FLIP_METRICS_ADDR: "127.0.0.1:0" }),
    log,
  );
  const north = await hub.registerTrust("north");
  await hub.registerTrust("south");
  t.context.gateway = startGatewayProc({
    hubUrl: hub.hub.url,
    trustCode: "north",
    key: north.apiKey,
    env: { FLIP_DATA_ACCESS_URL: t.context.dataAccess.url, FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY, FLIP_METRICS_ADDR: "127.0.0.1:0" },
  });
  t.context.gatewayMetricsUrl = String((await t.context.gateway.proc.waitForLog("metrics listening")).url);
  await linked(t.context.gateway);
  t.context.secrets = [north.id, north.apiKey, SUPPRESSED_SQL];
});

test.after.always(async (t) => {
  await t.context.gateway?.proc.stop();
  await t.context.dataAccess?.close();
  await t.context.hub?.close();
  await t.context.omop?.drop();
});

test.serial("the hub's /metrics passes promtool and counts the links, tasks and answers the work made", async (t) => {
  const { hub, secrets } = t.context;
  const url = hub.hub.metricsUrl!;
  const linkedNow = await eventually(async () => sampleValue(await scrape(url), "flip_trusts_linked"), (n) => n === 1, { what: "north's link in flip_trusts_linked" });
  t.is(linkedNow, 1, "north's gateway holds a link to this hub");

  const tasks = hub.client(TaskService, BOOTSTRAP_TOKEN);
  for (let i = 0; i < 3; i++) {
    const { task } = await tasks.createEchoTask({ trust: "north", message: `hello ${i}` });
    secrets.push(task!.id);
    t.is((await waitForTask(tasks, task!.id)).state, TaskState.SUCCEEDED);
  }
  const { project } = await hub.client(ProjectService, BOOTSTRAP_TOKEN).createProject({ name: "Metrics" });
  const cohorts = hub.client(CohortService, BOOTSTRAP_TOKEN);
  const { query } = await cohorts.submitCohortQuery({ projectId: project!.id, sql: SUPPRESSED_SQL });
  secrets.push(project!.id, query!.id);
  const answered = await eventually(
    () => cohorts.getCohortQuery({ queryId: query!.id }),
    (r) => r.query!.answers.find((a) => a.trustCode === "north")!.state !== TrustAnswerState.PENDING,
    { timeoutMs: 30_000, what: "north's answer" },
  );
  t.is(answered.query!.answers.find((a) => a.trustCode === "north")!.state, TrustAnswerState.SUPPRESSED);

  // The database gauges are read at most every 5 s: wait for a read that follows the work.
  const body = await eventually(
    () => scrape(url),
    (b) => sampleValue(b, "flip_tasks_open", { kind: "cohort_query", state: "pending" }) === 1,
    { timeoutMs: 20_000, what: "south's unanswered cohort task in flip_tasks_open" },
  );
  assertPromtoolAccepts(t, body);

  t.is(sampleValue(body, "flip_trust_online", { trust: "north" }), 1);
  t.is(sampleValue(body, "flip_trust_online", { trust: "south" }), 0, "a trust that never connected is offline");
  t.true(sampleValue(body, "flip_task_oldest_pending_seconds", { kind: "cohort_query" })! > 0);
  t.is(sampleValue(body, "flip_tasks_open", { kind: "echo", state: "pending" }), 0);
  // At least: an attempt lost with a link that dropped would be offered again.
  const echoOffers = sampleValue(body, "flip_task_dispatch_seconds_count", { kind: "echo" })!;
  t.true(echoOffers >= 3);
  t.is(sampleValue(body, "flip_task_dispatch_seconds_bucket", { kind: "echo", le: "+Inf" }), echoOffers);
  t.true(sampleValue(body, "flip_task_dispatch_seconds_count", { kind: "cohort_query" })! >= 1);
  t.is(sampleValue(body, "flip_cohort_answers_total", { trust: "north", outcome: "suppressed" }), 1);
  t.is(sampleValue(body, "flip_cohort_answer_seconds_count", { trust: "north" }), 1);
  t.is(sampleValue(body, "flip_cohort_answers_total", { trust: "south" }), undefined, "south has not answered");
  t.is(sampleValue(body, "flip_jobs", { state: "running" }), 0);
  t.true(sampleValue(body, "flip_http2_sessions_open")! >= 1);
  t.true(sampleValue(body, "flip_event_loop_lag_max_seconds")! >= 0);
  for (const s of secrets) t.false(body.includes(s), `the exposition must not carry ${s.slice(0, 12)}…`);
  t.notRegex(body, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, "no id of any kind is a label");
});

test.serial("the gateway's and data-access's /metrics pass promtool and show the link and the query", async (t) => {
  // Under load the link may be between a drop and its reconnection (the hub's fast test timings): wait for it.
  const gateway = await eventually(
    () => scrape(t.context.gatewayMetricsUrl),
    (b) => sampleValue(b, "flip_gateway_tasks_held") === 0 && sampleValue(b, "flip_gateway_linked") === 1,
    { what: "the gateway linked and holding no task once its results were acknowledged" },
  );
  assertPromtoolAccepts(t, gateway);
  t.is(sampleValue(gateway, "flip_gateway_linked"), 1);
  t.true(sampleValue(gateway, "flip_event_loop_lag_p99_seconds")! >= 0);

  const dataAccess = await scrape(t.context.dataAccess.metricsUrl!);
  assertPromtoolAccepts(t, dataAccess);
  t.is(sampleValue(dataAccess, "flip_data_access_cohort_queries_total", { outcome: "suppressed" }), 1);
  for (const s of t.context.secrets) t.false(dataAccess.includes(s));
});

test.serial("when the gateway disconnects, trusts linked falls to 0 and the trust goes offline", async (t) => {
  const url = t.context.hub.hub.metricsUrl!;
  await t.context.gateway.proc.stop();
  t.is(await eventually(async () => sampleValue(await scrape(url), "flip_trusts_linked"), (n) => n === 0, { what: "the link released" }), 0);
  const offline = await eventually(async () => sampleValue(await scrape(url), "flip_trust_online", { trust: "north" }), (n) => n === 0, {
    timeoutMs: 20_000,
    what: "north offline after FLIP_OFFLINE_AFTER_MS and the next read of the database",
  });
  t.is(offline, 0);
});

test("the alert rules pass promtool check rules and use only metrics the services export", (t) => {
  if (hasPromtool) {
    const r = spawnSync("promtool", ["check", "rules", ALERTS], { encoding: "utf8" });
    t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  }
  const source = readdirSync(path.join(repoRoot, "services"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.includes("node_modules"))
    .map((f) => readFileSync(path.join(repoRoot, "services", f), "utf8"))
    .join("\n");
  const used = new Set([...readFileSync(ALERTS, "utf8").matchAll(/\bflip_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum|total)$/, "")));
  t.true(used.size >= 6);
  for (const name of used) t.true(source.includes(`"${name}"`), `${name} is not an instrument any service creates`);
});
