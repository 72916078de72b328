/**
 * The compose deployments in deploy/, run as an operator runs them: Debian's docker-compose on the tests'
 * Docker engine, the images built offline (`npm run images -- deploy`), secrets in files. The hub stack
 * (hub, PostgreSQL, and Prometheus in the monitoring profile) and a trust stack (gateway, data-access,
 * imaging, research store, and the trial profile's synthetic OMOP database and PACS) that links to it
 * through the hub's published port, answers cohort queries, and links again after a restart.
 */
import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { generatePopulation } from "@flip/data-access/testing/omop/population.js";
import { profileNamed } from "@flip/data-access/testing/omop/profiles.js";
import { ensureDockerEngine, type DockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { runCliCaptured } from "@flip/tools/cli/run-captured.js";
import { ensureDeployImages, OFFLINE_COMPOSE_ENV } from "../../tools/src/images/deploy-images.js";
import { ComposeStack, composeInstalled, hostAddress, writeSecret } from "./compose-stack.js";

const log = createLogger({ service: "compose-test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });
const TRIAL = { persons: 400, seed: 3, profile: "central" };
const ADMIN_EMAIL = "operator@hub.test";
/** The trust's long-running services, each with a health check. */
const TRUST_SERVICES = ["gateway", "data-access", "imaging", "research-store"];

interface Ctx {
  engine: DockerEngine;
  dir: string;
  hub: ComposeStack;
  trust: ComposeStack;
  hubUrl: string;
  prometheusUrl: string;
  /** The gateway's metrics, published on loopback by compose.metrics.yaml. */
  gatewayMetricsUrl: string;
  trustCode: string;
  projectId: string;
  adminPassword: string;
}
const test = anyTest as TestFn<Ctx>;

/** `flip …` in this process, signed in as the hub's first admin (the operator's workstation). */
function flip(ctx: Ctx, argv: string[]) {
  return runCliCaptured(argv, { FLIP_CONFIG_DIR: path.join(ctx.dir, "cli"), FLIP_HUB_URL: ctx.hubUrl, FLIP_PASSWORD: ctx.adminPassword });
}

async function flipJson<T>(ctx: Ctx, argv: string[]): Promise<T> {
  const run = await flip(ctx, [...argv, "--json"]);
  if (run.code !== 0) throw new Error(`flip ${argv.join(" ")} exited ${run.code}: ${run.err}`);
  return JSON.parse(run.out) as T;
}

interface TrustJson {
  trust: { linkStatus: string; link?: { connectedAt?: string } };
}

async function trustStatus(ctx: Ctx): Promise<TrustJson["trust"]> {
  return (await flipJson<TrustJson>(ctx, ["trust", "get", ctx.trustCode])).trust;
}

/** Submits a cohort query and waits for the trust's answer; returns its record count. */
async function cohortCount(ctx: Ctx, sql: string): Promise<number> {
  const { query } = await flipJson<{ query: { answers: { trustCode: string; state: string; recordCount?: string }[] } }>(ctx, ["cohort", "query", "--project", ctx.projectId, "--sql", sql]);
  const answer = query.answers.find((a) => a.trustCode === ctx.trustCode);
  if (answer?.state !== "TRUST_ANSWER_STATE_OK") throw new Error(`the trust answered ${JSON.stringify(answer)}`);
  return Number(answer.recordCount ?? 0);
}

async function healthOf(ctx: Ctx, stack: ComposeStack, service: string): Promise<string> {
  const info = await ctx.engine.docker.getContainer(await stack.containerId(service)).inspect();
  return info.State.Health?.Status ?? "no health check";
}

/** Waits until each service's container health check passes (as `docker-compose ps` shows it). */
async function healthy(ctx: Ctx, stack: ComposeStack, services: string[]): Promise<void> {
  for (const service of services) {
    await eventually(() => healthOf(ctx, stack, service), (h) => h === "healthy", { timeoutMs: 120_000, everyMs: 1_000, what: `${service}'s health check passing` });
  }
}

/** What the trial profile's seed loaded, computed from the same generator here. */
function expectedPersons(where: (p: Record<string, unknown>) => boolean): number {
  return generatePopulation({ seed: TRIAL.seed, persons: TRIAL.persons, profile: profileNamed(TRIAL.profile) }).person!.filter(where).length;
}

const available = composeInstalled();
const serial = available ? test.serial : test.serial.skip;
if (!available) test.skip("the compose deployments need docker-compose: apt-get install docker-compose", () => undefined);

test.before(async (t) => {
  if (!available) return;
  t.timeout(900_000, "a cold build of the deployment images takes a few minutes");
  const engine = await ensureDockerEngine({ log });
  const images = await ensureDeployImages(engine, { log });
  t.log(`images: ${images.map((i) => `${i.tag} ${i.source}`).join(", ")}`);

  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-compose-"));
  const run = randomBytes(3).toString("hex");
  const [hubPort, prometheusPort] = [await freePort(), await freePort()];
  const hubSecrets = path.join(dir, "hub-secrets");
  mkdirSync(hubSecrets);
  const dbPassword = randomBytes(18).toString("hex");
  writeSecret(hubSecrets, "db_password", dbPassword);
  writeSecret(hubSecrets, "database_url", `postgres://flip:${dbPassword}@db:5432/flip`);
  writeSecret(hubSecrets, "admin_token", randomBytes(24).toString("hex"));
  writeSecret(hubSecrets, "secrets_key", randomBytes(32).toString("hex"));
  const hub = new ComposeStack("hub", `flip-test-hub-${run}`, {
    dockerHost: engine.host,
    profiles: ["monitoring"],
    env: { ...OFFLINE_COMPOSE_ENV, FLIP_SECRETS_DIR: hubSecrets, FLIP_HUB_PUBLISH: String(hubPort), FLIP_PROMETHEUS_PUBLISH: String(prometheusPort) },
  });
  t.context = { engine, dir, hub, hubUrl: `http://127.0.0.1:${hubPort}`, prometheusUrl: `http://127.0.0.1:${prometheusPort}`, trustCode: `trust-${run}` } as Ctx;
  await hub.ok(["up", "--detach"]);
  await healthy(t.context, hub, ["hub"]);

  // First start, as deploy/hub/README.md has it: the trust registered and the first admin created in the
  // hub's container with the bootstrap token from its secret file; from then on, the admin signs in.
  const registered = JSON.parse(await hub.exec("hub", ["flip", "trust", "register", "--name", "Compose Trust", "--code", t.context.trustCode, "--json"])) as { apiKey: string };
  const admin = JSON.parse(await hub.exec("hub", ["flip", "user", "create", "--email", ADMIN_EMAIL, "--role", "admin", "--generate-password", "--json"])) as { password: string };
  t.context.adminPassword = admin.password;
  const login = await flip(t.context, ["login", "--email", ADMIN_EMAIL]);
  if (login.code !== 0) throw new Error(`flip login failed: ${login.err}`);
  t.context.projectId = (await flipJson<{ project: { id: string } }>(t.context, ["project", "create", "--name", "Compose deployment"])).project.id;

  const trustSecrets = path.join(dir, "trust-secrets");
  mkdirSync(trustSecrets);
  const omopPassword = randomBytes(18).toString("hex");
  const imagingPassword = randomBytes(18).toString("hex");
  writeSecret(trustSecrets, "trust_key", registered.apiKey);
  writeSecret(trustSecrets, "internal_key", randomBytes(24).toString("hex"));
  writeSecret(trustSecrets, "omop_db_password", omopPassword);
  writeSecret(trustSecrets, "omop_database_url", `postgres://omop:${omopPassword}@omop-db:5432/omop`);
  writeSecret(trustSecrets, "imaging_db_password", imagingPassword);
  writeSecret(trustSecrets, "imaging_database_url", `postgres://imaging:${imagingPassword}@imaging-db:5432/imaging`);
  writeSecret(trustSecrets, "research_store_password", randomBytes(18).toString("hex"));
  writeSecret(trustSecrets, "pacs_password", randomBytes(18).toString("hex"));
  const stateDir = path.join(dir, "gateway");
  mkdirSync(stateDir);
  if (process.getuid?.() === 0) chownSync(stateDir, 1000, 1000);
  const socket = new URL(engine.host).pathname;
  t.context.gatewayMetricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
  t.context.trust = new ComposeStack("trust", `flip-test-trust-${run}`, {
    dockerHost: engine.host,
    profiles: ["trial"],
    overrides: ["compose.metrics.yaml"],
    env: {
      FLIP_GATEWAY_METRICS_PORT: new URL(t.context.gatewayMetricsUrl).port,
      FLIP_DATA_ACCESS_METRICS_PORT: String(await freePort()),
      FLIP_IMAGING_METRICS_PORT: String(await freePort()),
      ...OFFLINE_COMPOSE_ENV,
      FLIP_SECRETS_DIR: trustSecrets,
      FLIP_HUB_URL: `http://${hostAddress()}:${hubPort}`,
      FLIP_TRUST_CODE: t.context.trustCode,
      FLIP_GATEWAY_STATE_DIR: stateDir,
      FLIP_DOCKER_SOCKET: socket,
      FLIP_DOCKER_GID: String(statSync(socket).gid),
      FLIP_PACS_CONFIG: "./pacs.trial.json",
      FLIP_TRIAL_PERSONS: String(TRIAL.persons),
      FLIP_TRIAL_SEED: String(TRIAL.seed),
      FLIP_TRIAL_PROFILE: TRIAL.profile,
    },
  });
  await t.context.trust.ok(["up", "--detach"]);
});

test.afterEach.always(async (t) => {
  if (t.passed || !t.context.hub) return;
  t.log(`hub stack:\n${await t.context.hub.logs()}`);
  if (t.context.trust) t.log(`trust stack:\n${await t.context.trust.logs()}`);
});

test.after.always(async (t) => {
  if (!t.context.hub) return;
  // Both stacks go, with their volumes, even when one cannot be taken down.
  const downs = await Promise.allSettled([t.context.trust?.down(), t.context.hub.down()]);
  rmSync(t.context.dir, { recursive: true, force: true });
  for (const d of downs) if (d.status === "rejected") throw d.reason;
});

serial("the trust links to the hub over its one outbound connection, publishes only metrics on loopback, and every service is healthy", async (t) => {
  const { trust } = t.context;
  await eventually(() => trustStatus(t.context), (s) => s.linkStatus === "LINK_STATUS_ONLINE", { timeoutMs: 120_000, everyMs: 1_000, what: "the trust online at the hub" });
  await healthy(t.context, trust, TRUST_SERVICES);
  const published: string[] = [];
  for (const id of (await trust.ok(["ps", "-q"])).trim().split("\n")) {
    const ports = (await t.context.engine.docker.getContainer(id).inspect()).NetworkSettings.Ports ?? {};
    for (const [port, bindings] of Object.entries(ports)) published.push(...(bindings ?? []).map((b) => `${b.HostIp} ${port}`));
  }
  t.deepEqual(published, ["127.0.0.1 9464/tcp", "127.0.0.1 9464/tcp", "127.0.0.1 9464/tcp"], "nothing but the three services' metrics, on loopback");
  t.regex(await (await fetch(t.context.gatewayMetricsUrl)).text(), /^flip_/m, "the gateway's metrics");
  t.regex(await trust.ok(["logs", "--no-color", "gateway"]), /training workloads enabled/, "the gateway reaches the Docker engine through the mounted socket");
});

serial("a cohort query runs through the trust's gateway and data-access and counts its synthetic patients", async (t) => {
  const seed = await eventually(async () => (await t.context.engine.docker.getContainer(await t.context.trust.containerId("omop-seed")).inspect()).State, (s) => s.Status === "exited", {
    timeoutMs: 120_000,
    everyMs: 1_000,
    what: "the trial's OMOP seed finished",
  });
  t.is(seed.ExitCode, 0, "the synthetic patients are loaded");
  t.is(await cohortCount(t.context, "select person_id from omop.person"), TRIAL.persons);
  const before1960 = expectedPersons((p) => Number(p.year_of_birth) < 1960);
  t.true(before1960 >= 10, "above the suppression threshold");
  t.is(await cohortCount(t.context, "select person_id from omop.person where year_of_birth < 1960"), before1960);
});

serial("after `docker-compose restart` the trust links again and answers the next query", async (t) => {
  const before = (await trustStatus(t.context)).link?.connectedAt;
  await t.context.trust.ok(["restart"]);
  await eventually(() => trustStatus(t.context), (s) => s.linkStatus === "LINK_STATUS_ONLINE" && s.link?.connectedAt !== before, {
    timeoutMs: 120_000,
    everyMs: 1_000,
    what: "a new link from the restarted gateway",
  });
  // As an operator would: the next query once every service says it serves again (data-access restarted too).
  await healthy(t.context, t.context.trust, TRUST_SERVICES);
  t.is(await cohortCount(t.context, "select person_id from omop.person"), TRIAL.persons);
});

serial("Prometheus in the monitoring profile scrapes the hub's metrics", async (t) => {
  const query = async (promql: string) => {
    const res = await fetch(`${t.context.prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    return ((await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  };
  const up = await eventually(() => query('up{job="hub"}'), (r) => r[0]?.value[1] === "1", { timeoutMs: 90_000, everyMs: 1_000, what: "the hub scraped (up == 1)" });
  t.is(up.length, 1);
  const flipSeries = await query('{job="hub", __name__=~"flip_.+"}');
  t.true(flipSeries.length > 0, "the hub's flip_ metrics are stored");
  const rules = (await (await fetch(`${t.context.prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: unknown[] } };
  t.true(rules.data.groups.length > 0, "the alerting rules of deploy/prometheus/alerts.yml are loaded");
});
