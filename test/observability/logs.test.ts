/**
 * What a full demo run (`npm start -- --exit`: hub, two trusts with data-access, imaging, PACS and
 * research store, a cohort study, training on both trusts, an imaging import and a CNN) writes to its
 * logs, at debug: no password, key or token, no cohort SQL, no patient identifier. The demo's summary for
 * its human reader (the plain lines on stdout, which show the demo passwords once, on purpose) is not a
 * log; every JSON line (the demo logs to stderr), all of stderr and every log file in the demo's directory are.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import test from "ava";
import { PROFILES } from "@flip/data-access/testing/omop/profiles.js";
import { ensureDockerEngine } from "@flip/shared/docker/engine.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { demoTrusts } from "../../tools/src/demo/demo-trusts.js";
import { IMAGING_COHORT_SQL } from "../../tools/src/demo/imaging-study.js";
import { removeDemoState } from "../../tools/src/demo/reset.js";
import { DEMO_COHORT_SQL } from "../../tools/src/demo/study.js";
import { TRAINING_COHORT_SQL } from "../../tools/src/demo/training.js";
import { repoRoot } from "../support/processes.js";

const log = createLogger({ service: "test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

interface DemoRun {
  code: number | null;
  /** Every line the demo wrote to stdout. */
  stdout: string[];
  stderr: string;
}

/** Runs the demo to its end in `dir`, on free ports, logging at debug. */
async function runDemo(dir: string, dockerHost: string): Promise<DemoRun> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FLIP_DEMO_DIR: dir,
    FLIP_HUB_ADDR: "127.0.0.1:0",
    FLIP_METRICS_ADDR: "127.0.0.1:0",
    FLIP_LOG_LEVEL: "debug",
    FLIP_NO_APT: "1",
    DOCKER_HOST: dockerHost,
  };
  delete env.DATABASE_URL;
  delete env.FLIP_HUB_DATA_DIR;
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "tools/src/demo/start.ts"), "--exit"], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on("line", (line) => stdout.push(line));
  child.stderr.on("data", (d: Buffer) => stderr.push(d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  return { code, stdout, stderr: stderr.join("") };
}

/** Files under `dir`, recursively, whose name ends with one of `suffixes`. */
function filesEndingWith(dir: string, suffixes: string[]): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => suffixes.some((s) => f.endsWith(s)))
    .map((f) => path.join(dir, f));
}

const read = (file: string) => readFileSync(file, "utf8").trim();

/** Everything the run must never log, by what it is (the values themselves are never printed). */
function secretsOf(dir: string, run: DemoRun): Map<string, string> {
  const secrets = new Map<string, string>();
  // The summary's account table: "  <role>  <email>  <password>".
  const accountRows = run.stdout.filter((l) => !l.startsWith("{")).map((l) => /^\s+.+\s(\S+@\S+)\s+(demo-\S+)$/.exec(l));
  for (const row of accountRows) if (row) secrets.set(`the password of ${row[1]}`, row[2]!);
  const state = path.join(dir, "demo");
  secrets.set("bootstrap admin token", read(path.join(state, "admin-token")));
  for (const f of filesEndingWith(path.join(state, "trusts"), [".key", ".internal-key"])) secrets.set(`trust key ${path.basename(f)}`, read(f));
  const accounts = JSON.parse(read(path.join(state, "accounts.json"))) as { admin: { token: string }; researcher: { token: string }; trustAdmins: [string, { token: string }][] };
  secrets.set("Admin API token", accounts.admin.token);
  secrets.set("Researcher API token", accounts.researcher.token);
  for (const [code, a] of accounts.trustAdmins) secrets.set(`Trust Admin API token of ${code}`, a.token);
  for (const f of [...filesEndingWith(dir, ["orthanc-password", ".password", "pseudonym.key", "secrets.key"])]) secrets.set(`secret in ${path.relative(dir, f)}`, read(f));
  return secrets;
}

/** Lines of the demo's cohort SQL (long enough to mean something), each a leak on its own. */
function sqlFragments(): string[] {
  return [DEMO_COHORT_SQL, TRAINING_COHORT_SQL, IMAGING_COHORT_SQL].flatMap((sql) => sql.split("\n").map((l) => l.trim()).filter((l) => l.length >= 24));
}

/** Patient identifiers as the demo's synthetic data makes them: OMOP person_source_value (= DICOM PatientID), accession numbers, DICOM person names. */
function identifierPatterns(): Map<string, RegExp> {
  const codes = demoTrusts.map((t) => PROFILES[t.profile]!.accessionCode).join("|");
  return new Map([
    ["an OMOP person_source_value / DICOM PatientID", new RegExp(`\\b(?:${codes})-\\d{7}\\b`)],
    ["an accession number", new RegExp(`\\bACC(?:${codes})\\d{6}\\b`)],
    ["a DICOM PatientName", /\b[A-Z]{2,}\^[A-Z]{2,}\b/],
  ]);
}

/** Every string in a parsed JSON value. */
function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(stringsIn);
}

/** Whether a parsed log record has a field that names a person (person_id, personIds, …) anywhere in it. */
function namesAPerson(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(namesAPerson);
  if (value === null || typeof value !== "object") return false;
  return Object.entries(value).some(([k, v]) => /^person_?ids?$/i.test(k) || namesAPerson(v));
}

test("a full demo run logs no password, key, token, cohort SQL or patient identifier, even at debug", async (t) => {
  t.timeout(900_000, "the demo builds its workload images when they are missing");
  const engine = await ensureDockerEngine({ log });
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-demo-logs-"));
  t.teardown(() => {
    removeDemoState(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  const started = Date.now();
  const run = await runDemo(dir, engine.host);
  t.log(`the demo ran for ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.is(run.code, 0, `the demo failed: ${run.stderr.slice(-2000)}`);

  // What the person reads: what ran, then that FLIP stopped (--exit), not that it is running.
  t.true(run.stdout.includes("The demo study ran end to end:"), "the summary says the study ran");
  t.deepEqual(run.stdout.filter((l) => /^ {2}(ok|FAILED) /.test(l)).map((l) => l.trim().split(/\s{2,}/).slice(0, 2).join(" ")), ["ok cohort study", "ok federated training", "ok imaging"]);
  t.false(run.stdout.includes("FLIP is running."));
  t.regex(run.stdout.at(-1) ?? "", /^FLIP stopped in \d+\.\d s\.$/);

  // The demo logs to stderr (JSON lines); stdout is its story for a person.
  const jsonLines = [...run.stdout, ...run.stderr.split("\n")].filter((l) => l.startsWith("{"));
  const logs = new Map<string, string>([
    ["the demo's JSON log lines", jsonLines.join("\n")],
    ["the demo's stderr", run.stderr],
    ...filesEndingWith(dir, [".log", ".jsonl"]).map((f) => [path.relative(dir, f), readFileSync(f, "utf8")] as [string, string]),
  ]);
  const records = jsonLines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(records.some((r) => r.level === 20), "debug lines were written, so they were checked too");
  t.true([...logs.keys()].some((k) => k.endsWith("tasks.jsonl")), "the gateways' task logs were found");
  const secrets = secretsOf(dir, run);
  t.is([...secrets.keys()].filter((k) => k.startsWith("the password of")).length, 4, "the four demo passwords were read from the summary");

  const leaks: string[] = [];
  for (const [where, text] of logs) {
    // JSON escapes quotes and newlines: search the strings of JSON lines as they read, too.
    const decoded = text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .flatMap((l) => stringsIn(JSON.parse(l)))
      .join("\n");
    const haystack = `${text}\n${decoded}`;
    for (const [what, secret] of secrets) if (secret && haystack.includes(secret)) leaks.push(`${what} in ${where}`);
    for (const fragment of sqlFragments()) if (haystack.includes(fragment)) leaks.push(`cohort SQL ("${fragment}") in ${where}`);
    for (const [what, pattern] of identifierPatterns()) {
      const m = pattern.exec(haystack);
      if (m) leaks.push(`${what} (${m[0]}) in ${where}`);
    }
  }
  for (const r of records) if (namesAPerson(r)) leaks.push(`a person id field in the log line "${String(r.msg)}"`);
  t.deepEqual(leaks, []);
});
