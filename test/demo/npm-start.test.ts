/**
 * A newcomer's first minutes with `npm start`, run for real (npm in its own process group, as in a
 * terminal): Ctrl-C and SIGTERM to the group stop every component in order with one line each and no
 * warnings; a second Ctrl-C stops at once; --exit says what happened; a second npm start over a running one
 * says why in one line; --reset starts from nothing. The demo runs without the study (--no-study): hub, two trusts with PostgreSQL,
 * data-access, PACS, research store, imaging and gateway. How long a stop takes is measured by
 * `npm run bench -- shutdown`, not here.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { removeDemoState } from "../../tools/src/demo/reset.js";
import { demoLockPath } from "../../tools/src/demo/single-instance.js";
import { npmStart, processesGone, processesMentioning, type NpmStart } from "./npm-start-process.js";

// One demo directory for the file: the first start creates the databases and fills the PACSs; later ones reuse them.
const demoDir = mkdtempSync(path.join(os.tmpdir(), "flip-npm-start-"));
test.after.always(() => {
  removeDemoState(demoDir);
  rmSync(demoDir, { recursive: true, force: true });
});

async function demoEnv(dir = demoDir): Promise<Record<string, string>> {
  return { FLIP_DEMO_DIR: dir, FLIP_HUB_ADDR: `127.0.0.1:${await freePort()}`, FLIP_METRICS_ADDR: `127.0.0.1:${await freePort()}`, FLIP_LOG_LEVEL: "info" };
}

const RUNNING = /^FLIP is running\.$/;

/** The components npm start --no-study runs, in the order they must stop. */
const STOP_ORDER = [
  [/^ {2}stopped gateway north /, /^ {2}stopped gateway south /],
  [/^ {2}stopped data-access at north /, /^ {2}stopped data-access at south /, /^ {2}stopped imaging at north /, /^ {2}stopped imaging at south /],
  [/^ {2}stopped hub /],
  [/^ {2}stopped PostgreSQL of the hub /, /^ {2}stopped PostgreSQL of north /, /^ {2}stopped PostgreSQL of south /],
];

/** JSON log lines above info (warn, error, fatal) on stderr. */
const aboveInfo = (run: NpmStart) =>
  run.stderr.filter((l) => {
    try {
      return (JSON.parse(l) as { level?: number }).level! > 30;
    } catch {
      return false;
    }
  });

for (const [signal, headline] of [
  ["SIGINT", /^Ctrl-C: stopping FLIP \(Ctrl-C again stops at once\)$/],
  ["SIGTERM", /^SIGTERM: stopping FLIP/],
] as const) {
  test.serial(`${signal} to npm start's process group stops every component in order, one line each, with nothing logged above info`, async (t) => {
    const run = npmStart(["--no-study", "--no-training"], await demoEnv());
    await run.waitForLine(RUNNING);
    run.signalGroup(signal);
    const { code } = await run.exited;
    t.is(code, 0, `npm start exits 0 after a clean stop; last lines:\n${run.stdout.slice(-15).join("\n")}`);

    const from = run.stdout.findIndex((l) => headline.test(l));
    t.true(from >= 0, `it says it is stopping; got:\n${run.stdout.slice(-15).join("\n")}`);
    const stopLines = run.stdout.slice(from + 1);
    t.regex(stopLines.at(-1) ?? "", /^FLIP stopped in \d+\.\d s\.$/, "the last line says FLIP stopped");
    const componentLines = stopLines.slice(0, -1);
    const expected = STOP_ORDER.flat();
    t.is(componentLines.length, expected.length, `one line per component:\n${componentLines.join("\n")}`);
    const position = (p: RegExp) => componentLines.findIndex((l) => p.test(l));
    for (const p of expected) t.true(position(p) >= 0, `a line matching ${p}`);
    for (let phase = 1; phase < STOP_ORDER.length; phase++) {
      const lastBefore = Math.max(...STOP_ORDER[phase - 1]!.map(position));
      const firstHere = Math.min(...STOP_ORDER[phase]!.map(position));
      t.true(lastBefore < firstHere, `${STOP_ORDER[phase - 1]!.join(", ")} stop before ${STOP_ORDER[phase]!.join(", ")}`);
    }
    t.deepEqual(aboveInfo(run), [], "no warning or error is logged while stopping");
    t.deepEqual(await processesGone(demoDir), [], "no PostgreSQL or Orthanc of the demo is left running");
  });
}

test.serial("a second Ctrl-C while FLIP stops (here, held up by a frozen PACS) stops it at once", async (t) => {
  const run = npmStart(["--no-study", "--no-training"], await demoEnv());
  await run.waitForLine(RUNNING);
  // Freeze north's PACS: its orderly stop now waits, as one of a hung server would.
  const pacs = processesMentioning(path.join(demoDir, "trusts", "north", "pacs"));
  t.is(pacs.length, 1, "north's PACS runs");
  process.kill(pacs[0]!.pid, "SIGSTOP");
  const first = Date.now();
  run.signalGroup("SIGINT");
  await run.waitForLine(/^ {2}stopped gateway north /);
  // Later than one key press arriving twice (from the terminal and again from npm).
  await new Promise((r) => setTimeout(r, Math.max(0, first + 700 - Date.now())));
  run.signalGroup("SIGINT");
  const { code, signal } = await run.exited;
  t.true(code === 130 || signal === "SIGINT", `npm start ends as interrupted (code ${code}, signal ${signal})`);
  t.true(run.stdout.some((l) => /^stopping at once: /.test(l)), "it says it stops at once");
  t.false(run.stdout.some((l) => /^FLIP stopped in /.test(l)), "the orderly stop did not finish");
  t.deepEqual(await processesGone(demoDir), [], "the frozen PACS and every database still stop (they die with FLIP)");
});

test.serial("npm start -- --exit says what it did and that it stopped, not that FLIP is running", async (t) => {
  const run = npmStart(["--no-study", "--no-training", "--exit"], await demoEnv());
  const { code } = await run.exited;
  t.is(code, 0, run.stdout.slice(-10).join("\n"));
  const text = run.stdout.join("\n");
  t.notRegex(text, /FLIP is running|Ctrl-C stops everything/);
  t.regex(text, /^--exit: stopping FLIP \(hub and trusts north, south started; --no-study ran no study\); without --exit it keeps running/m);
  t.regex(run.stdout.at(-1) ?? "", /^FLIP stopped in \d+\.\d s\.$/);
});

test.serial("a second npm start over a running one says why in one line and starts nothing", async (t) => {
  const env = await demoEnv();
  const first = npmStart(["--no-study", "--no-training"], env);
  await first.waitForLine(RUNNING);
  const linesBefore = first.stdout.length;

  // The same demo directory (and the same addresses).
  const again = npmStart(["--no-study", "--no-training"], env);
  t.is((await again.exited).code, 1);
  const pid = readFileSync(demoLockPath(demoDir), "utf8").trim();
  t.deepEqual(again.stderr, [`npm start: FLIP is already running from ${demoDir} (npm start, pid ${pid}): use that one, or stop it first (Ctrl-C in its terminal, or kill ${pid}).`]);
  t.false(again.stdout.some((l) => l.startsWith("•")), "nothing started");

  // Another demo directory, but the running hub's address.
  const otherDir = mkdtempSync(path.join(os.tmpdir(), "flip-npm-start-other-"));
  t.teardown(() => rmSync(otherDir, { recursive: true, force: true }));
  const port = env.FLIP_HUB_ADDR!.split(":")[1]!;
  const elsewhere = npmStart(["--no-study", "--no-training"], { ...(await demoEnv(otherDir)), FLIP_HUB_ADDR: env.FLIP_HUB_ADDR! });
  t.is((await elsewhere.exited).code, 1);
  t.is(elsewhere.stderr.length, 1, elsewhere.stderr.join("\n"));
  t.regex(elsewhere.stderr[0]!, new RegExp(`^npm start: port ${port} \\(the hub's address, 127\\.0\\.0\\.1:${port}\\) is in use by another program: stop it, or use another port, e\\.g\\. FLIP_HUB_ADDR=127\\.0\\.0\\.1:\\d+ npm start$`));
  t.deepEqual(processesMentioning(otherDir), [], "nothing of the second demo runs");

  // The first one was not disturbed.
  t.is(first.stdout.length, linesBefore, "the running demo printed nothing more");
  first.signalGroup("SIGINT");
  t.is((await first.exited).code, 0);
});

test.serial("npm start -- --reset starts from nothing: new accounts with their passwords, fresh databases", async (t) => {
  const accountRows = (run: NpmStart) => run.stdout.filter((l) => /^ {2}\S.*\s\S+@(?:\S+\.)?flip\.demo\s+demo-\S+$/.test(l));
  const again = npmStart(["--no-study", "--no-training", "--exit"], await demoEnv());
  t.is((await again.exited).code, 0);
  t.true(again.stdout.some((l) => /^Demo accounts: sign in at http:\/\/127\.0\.0\.1:\d+\/ or with/.test(l)), "a later run prints the console's address and the same accounts");
  t.is(accountRows(again).length, 4, again.stdout.join("\n"));

  const reset = npmStart(["--no-study", "--no-training", "--exit", "--reset"], await demoEnv());
  t.is((await reset.exited).code, 0, [...reset.stdout, ...reset.stderr].slice(-10).join("\n"));
  t.true(reset.stdout.some((l) => l.startsWith(`• --reset: removed the demo's databases, PACSs, accounts and keys from ${demoDir}`)));
  t.true(reset.stdout.some((l) => l.startsWith("Demo accounts (new)")), "new accounts");
  t.is(accountRows(reset).length, 4);
  const passwords = (run: NpmStart) => accountRows(run).map((l) => l.trim().split(/\s+/).at(-1));
  t.notDeepEqual(passwords(reset), passwords(again), "with new passwords");
  t.true(reset.stdout.some((l) => /^ {2}north: filling its PACS with \d+ synthetic studies/.test(l)), "a fresh PACS");
});
