/**
 * The demo story in a real browser, against the real `npm start` (hub, trusts north and south with their
 * PostgreSQL and data-access services, gateways, the Docker engine for training): the researcher creates a
 * project, asks both trusts for a cohort and stages the project; each trust's governance officer decides in
 * their approvals queue; the researcher uploads a model, trains it across both trusts and watches its charts
 * fill, downloads the weights, and aborts a second job; the admin registers a trust and rotates its key,
 * creates a user, verifies the audit chain and switches deployment mode.
 * Every main page is saved as a screenshot in test-artifacts/console/.
 */
import { statSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import type { Browser, Page } from "playwright-core";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { npmStart, type NpmStart } from "../demo/npm-start-process.js";
import { TRAINING_COHORT_SQL } from "../../tools/src/demo/training.js";
import { laptopPage, launchBrowser, screenshot, signIn } from "./browser.js";
import { auditActions, createUser, registerTrust, rotateTrustKey, setDeploymentMode, trustRows, verifyAuditChain } from "./steps/admin.js";
import { decide, ledgerEntries, pendingProjects, waitForFrozen } from "./steps/approvals.js";
import { addMember, checkProblems, createProject, decisionStates, runCohortQuery, stageAt } from "./steps/projects.js";
import { abortJob, createModel, downloadWeights, startJob, waitForJobEnd } from "./steps/training.js";

interface Ctx {
  demo: NpmStart;
  dir: string;
  url: string;
  passwords: Map<string, string>;
  browser: Browser;
  pages: Map<string, Page>;
  errors: string[];
  story: { projectName: string; projectId?: string; modelId?: string; jobId?: string };
}
const test = anyTest as TestFn<Ctx>;

const root = path.resolve(import.meta.dirname, "../..");
const RESEARCHER = "researcher@flip.demo";
const ADMIN = "admin@flip.demo";
const officer = (trust: string) => `governance@${trust}.flip.demo`;

test.before(async (t) => {
  t.timeout(600_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-console-demo-"));
  const hubPort = await freePort();
  const demo = npmStart(["--no-study", "--no-imaging"], { FLIP_DEMO_DIR: dir, FLIP_HUB_ADDR: `127.0.0.1:${hubPort}`, FLIP_METRICS_ADDR: `127.0.0.1:${await freePort()}`, FLIP_LOG_LEVEL: "warn" });
  t.context = { demo, dir, url: `http://127.0.0.1:${hubPort}`, passwords: new Map(), browser: undefined as unknown as Browser, pages: new Map(), errors: [], story: { projectName: `Hypertension risk ${Date.now()}` } };
  await demo.waitForLine(/^FLIP is running\.$/, { timeoutMs: 540_000 });
  // The sign-in table npm start prints: "  <role>  <email>  <password>".
  for (const l of demo.stdout) {
    const row = /^ {2}\S.*\s(\S+@(?:\S+\.)?flip\.demo)\s+(demo-\S+)$/.exec(l);
    if (row) t.context.passwords.set(row[1]!, row[2]!);
  }
  t.true(demo.stdout.some((l) => l.startsWith(`  console:  ${t.context.url}/`)), "npm start prints the console's address");
  t.context.browser = await launchBrowser();
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  if (t.context.demo) {
    t.context.demo.signalGroup("SIGINT");
    await t.context.demo.exited;
  }
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});

test.afterEach.always((t) => {
  t.deepEqual(
    t.context.errors.filter((e) => e.startsWith("page error")),
    [],
    "no uncaught script error on any page",
  );
});

/** The person's own browser tab (one context each, as different people on different machines), signed in. */
async function as(t: ExecutionContext<Ctx>, email: string): Promise<Page> {
  let page = t.context.pages.get(email);
  if (!page) {
    page = await laptopPage(t.context.browser, t.context.errors);
    const password = t.context.passwords.get(email);
    if (!password) throw new Error(`npm start printed no password for ${email}`);
    await signIn(page, t.context.url, email, password);
    t.context.pages.set(email, page);
  }
  return page;
}

test.serial("the researcher creates a project, checks and runs a cohort query at both trusts, and stages the project", async (t) => {
  t.timeout(300_000);
  const page = await as(t, RESEARCHER);
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  const projectId = await createProject(page, { name: t.context.story.projectName, description: "Hypertension among type 2 diabetes patients (console story)" });
  t.context.story.projectId = projectId;

  const problems = await checkProblems(page, projectId, "delete from omop.person");
  t.true(problems.some((p) => /not allowed|only read/i.test(p)), `the editor names the broken rule next to the text: ${problems.join(" | ")}`);
  t.deepEqual(await checkProblems(page, projectId, TRAINING_COHORT_SQL), [], "the training cohort's SQL passes the default rules");

  const answer = await runCohortQuery(page, projectId, { name: "T2D with hypertension label", sql: TRAINING_COHORT_SQL });
  t.deepEqual(answer.trusts.map((a) => [a.code, a.state]).sort(), [["north", "answered"], ["south", "answered"]]);
  t.is(answer.total, answer.trusts.reduce((n, a) => n + a.count, 0), "the total is the sum of the trusts' counts");
  t.true(answer.total > 0);
  await screenshot(page, "cohort-query");

  await stageAt(page, projectId, ["north", "south"]);
  const states = await decisionStates(page, projectId);
  t.deepEqual(states.map((s) => [s.code, s.state]).sort(), [["north", "pending"], ["south", "pending"]]);
  await screenshot(page, "project-staged");
  await page.goto(`${t.context.url}/projects`);
  await page.getByRole("link", { name: t.context.story.projectName }).waitFor();
  await screenshot(page, "projects");
});

test.serial("each trust's governance officer approves the project from their queue; both cohorts freeze", async (t) => {
  t.timeout(300_000);
  const name = t.context.story.projectName;
  for (const trust of ["north", "south"]) {
    const page = await as(t, officer(trust));
    t.regex(new URL(page.url()).pathname, /^\/approvals$/, "a governance officer lands on their approvals");
    t.true((await pendingProjects(page, trust)).includes(name), `${trust}'s queue lists the project`);
    if (trust === "north") await screenshot(page, "approvals-queue");
    await decide(page, trust, name, "approve", `approved by the ${trust} research ethics committee (console story)`);
    const frozen = await waitForFrozen(page, trust, name);
    t.true(frozen === "suppressed" || frozen > 0, `${trust} froze its cohort: ${frozen}`);
    t.false((await pendingProjects(page, trust)).includes(name), "it left the queue");
    if (trust === "north") await screenshot(page, "approvals-decided");
    const ledger = await ledgerEntries(page, trust);
    t.true(ledger.some((e) => e.project === name), `${trust}'s ledger shows what ran on its data for the project: ${JSON.stringify(ledger.slice(0, 5))}`);
    if (trust === "north") await screenshot(page, "trust-ledger");
  }
  const researcher = await as(t, RESEARCHER);
  const states = await decisionStates(researcher, t.context.story.projectId!);
  t.deepEqual(states.map((s) => [s.code, s.state]).sort(), [["north", "approved"], ["south", "approved"]]);
  t.true(states.every((s) => s.freeze.startsWith("frozen")), JSON.stringify(states));
});

test.serial("the researcher uploads a model, trains it across both trusts, watches its charts fill, downloads the weights, and aborts a second job", async (t) => {
  t.timeout(480_000);
  const page = await as(t, RESEARCHER);
  const workload = path.join(root, "workloads", "train-numpy");
  const files = (await readdir(workload)).filter((f) => f.endsWith(".py") || f.endsWith(".md")).map((f) => path.join(workload, f));
  // A form refused by its own checks says why beside the field, and takes the person there.
  await page.goto(`${t.context.url}/projects/${t.context.story.projectId}/models/new`);
  await page.getByRole("button", { name: "Create model" }).click();
  await page.getByText("Give the model a name.").waitFor();
  t.is(await page.locator(":focus").getAttribute("aria-invalid"), "true", "the first field with a problem has the focus");
  const modelId = await createModel(page, t.context.story.projectId!, {
    name: "hypertension-risk-logreg",
    image: "flip/train-numpy:1",
    configJson: JSON.stringify({ local_epochs: 3, learning_rate: 0.5, data: "cohort", label_column: "hypertension", feature_columns: ["year_of_birth", "male", "visits"] }),
    files,
  });
  t.context.story.modelId = modelId;
  await screenshot(page, "model");
  const jobId = await startJob(page, modelId, { trusts: ["north", "south"], rounds: 3 });
  t.context.story.jobId = jobId;
  const ended = await waitForJobEnd(page, jobId, 360_000);
  t.is(ended.state, "completed");
  t.is(ended.rounds, 3);
  t.true(ended.metricsLabels.length > 0, "the workload's metrics are charted");
  t.is(ended.seriesPerChart, 2, "one series per trust in every chart");
  await screenshot(page, "job-completed");

  const weights = await downloadWeights(page, jobId);
  t.is(weights.name, `${jobId}.safetensors`);
  t.true(weights.size > 8 && statSync(weights.path).size === weights.size, "the global weights were downloaded whole (checksum checked by the page)");

  // A second, long job, aborted with a reason while it runs.
  const longJob = await startJob(page, modelId, { trusts: ["north", "south"], rounds: 50 });
  await abortJob(page, longJob, "wrong learning rate (console story)");
  const aborted = await waitForJobEnd(page, longJob, 120_000);
  t.is(aborted.state, "aborted");
  t.true(aborted.rounds < 50);

  await page.goto(`${t.context.url}/jobs`);
  await page.getByRole("link", { name: "hypertension-risk-logreg" }).first().waitFor();
  await screenshot(page, "jobs");
});

test.serial("the admin sees both trusts online, registers a trust and rotates its key, creates a user who joins the project, verifies the audit chain and switches deployment mode", async (t) => {
  t.timeout(180_000);
  const page = await as(t, ADMIN);
  const trusts = await trustRows(page);
  t.deepEqual(trusts.filter((r) => r.online).map((r) => r.code).sort(), ["north", "south"]);
  const firstKey = await registerTrust(page, { name: "East Hospital", code: "east", region: "east" });
  const rotatedKey = await rotateTrustKey(page, "east");
  t.true(firstKey.startsWith("flip_trust_") && rotatedKey.startsWith("flip_trust_") && rotatedKey !== firstKey, "each key is shown once, and rotating gives a new one");
  t.deepEqual((await trustRows(page)).find((r) => r.code === "east"), { code: "east", online: false, lastSeen: "never" });
  await screenshot(page, "admin-trusts");

  const password = await createUser(page, { email: "new.researcher@flip.demo", name: "New Researcher", role: "Researcher" });
  t.true(password.length >= 12, "a generated password is shown once");
  await screenshot(page, "admin-users");
  // The new colleague joins the project, and signs in with the password they were given.
  await addMember(await as(t, RESEARCHER), t.context.story.projectId!, "new.researcher@flip.demo");
  t.context.passwords.set("new.researcher@flip.demo", password);
  const colleague = await as(t, "new.researcher@flip.demo");
  await colleague.goto(`${t.context.url}/projects`);
  await colleague.getByRole("link", { name: t.context.story.projectName }).waitFor();

  const chain = await verifyAuditChain(page);
  t.true(chain.ok);
  t.true(chain.entries > 10);
  const decided = await auditActions(page, "project.");
  t.true(decided.some((a) => a.startsWith("project.")), decided.join(", "));
  await screenshot(page, "admin-audit");

  const on = await setDeploymentMode(page, true);
  t.true(on.on);
  await screenshot(page, "admin-deployment");
  t.false((await setDeploymentMode(page, false)).on);
});
