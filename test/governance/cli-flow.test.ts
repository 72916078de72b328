/**
 * The governance flow of the issue, run through the `flip` CLI as its users would: sign in, create a
 * project, query the cohort, stage, approve at one trust, decline at the other, verify the audit chain.
 */
import { mkdtempSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import anyTest, { type TestFn } from "ava";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, TaskOutputSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { recordResult } from "@flip/hub/tasks/task-outcomes.js";
import { runCliCaptured } from "@flip/tools/cli/run-captured.js";
import { PASSWORD, startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  t: TestHub;
  trusts: Record<string, string>;
  admin: string;
}
const test = anyTest as TestFn<Ctx>;

/** Runs `flip …` in this process against the test hub, as the person whose config dir is `home`. */
function flip(ctx: Ctx, home: string, argv: string[], extraEnv: Record<string, string> = {}) {
  return runCliCaptured(argv, { FLIP_CONFIG_DIR: home, FLIP_HUB_URL: ctx.t.hub.url, ...extraEnv });
}

test.before(async (t) => {
  const hub = await startTestHub();
  const trusts: Record<string, string> = {};
  for (const code of ["north", "south"]) trusts[code] = (await hub.registerTrust(code)).id;
  const admin = (await hub.firstAdmin()).token;
  await hub.user(admin, "rita@uni.test", [{ role: Role.RESEARCHER }]);
  await hub.user(admin, "nick@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }]);
  await hub.user(admin, "sue@south.test", [{ role: Role.TRUST_ADMIN, trust: "south" }]);
  t.context = { t: hub, trusts, admin };
});

test.after.always(async (t) => {
  await t.context.t?.close();
});

test.serial("create, query, stage, approve at one trust, decline at the other, and verify the audit chain, all through flip", async (t) => {
  const home = (who: string) => mkdtempSync(path.join(os.tmpdir(), `flip-cli-${who}-`));
  const rita = home("rita");
  const nick = home("nick");
  const sue = home("sue");
  const adminHome = home("admin");
  for (const [dir, email] of [[rita, "rita@uni.test"], [nick, "nick@north.test"], [sue, "sue@south.test"], [adminHome, "admin@hub.test"]] as const) {
    const login = await flip(t.context, dir, ["login", "--email", email], { FLIP_PASSWORD: PASSWORD });
    t.is(login.code, 0, login.err);
  }

  const created = await flip(t.context, rita, ["project", "create", "--name", "Asthma admissions", "--json"]);
  t.is(created.code, 0, created.err);
  const projectId = (JSON.parse(created.out) as { project: { id: string } }).project.id;

  const queried = await flip(t.context, rita, ["cohort", "query", "--project", projectId, "--sql", "select person_id from omop.person", "--no-wait", "--json"]);
  t.is(queried.code, 0, queried.err);
  const queryId = (JSON.parse(queried.out) as { query: { id: string } }).query.id;
  // The trusts' part, recorded through the hub's own result path (the link's tests cover the stream).
  const em = t.context.t.hub.db.em();
  for (const [code, count] of [["north", 240], ["south", 75]] as const) {
    const [row] = await em.execute<{ task_id: string }[]>("select task_id from cohort_answer where query_id = ? and trust_id = ?", [queryId, t.context.trusts[code]!]);
    await recordResult(em, t.context.trusts[code]!, row!.task_id, {
      case: "output",
      value: create(TaskOutputSchema, { kind: { case: "cohortQuery", value: { outcome: CohortOutcome.OK, recordCount: BigInt(count), threshold: 10 } } }),
    });
  }
  let shown = "";
  for (let i = 0; i < 50 && !/total .*315/.test(shown); i++) {
    shown = (await flip(t.context, rita, ["cohort", "get", queryId])).out;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.regex(shown, /north\s+ok\s+240/);
  t.regex(shown, /south\s+ok\s+75/);
  t.regex(shown, /total \(trusts that answered OK\): 315/);

  t.is((await flip(t.context, rita, ["project", "stage", projectId, "--trust", "north", "--trust", "south"])).code, 0);
  const approve = await flip(t.context, nick, ["project", "approve", projectId, "--trust", "north", "--reason", "REC 24/LO/0001"]);
  t.is(approve.code, 0, approve.err);
  t.regex(approve.out, /status: approved/);
  const refused = await flip(t.context, adminHome, ["project", "decline", projectId, "--trust", "south"]);
  t.is(refused.code, 1, "the hub Admin cannot decide for a trust that has its own Trust Admin");
  t.regex(refused.err, /PermissionDenied/);
  const decline = await flip(t.context, sue, ["project", "decline", projectId, "--trust", "south", "--reason", "not in scope"]);
  t.is(decline.code, 0, decline.err);
  t.regex(decline.out, /south\s+declined/);

  // People are named as people know them; the ids stay in --json.
  const shownProject = await flip(t.context, rita, ["project", "get", projectId]);
  t.is(shownProject.code, 0, shownProject.err);
  t.regex(shownProject.out, /owner: rita@uni\.test /);
  t.regex(shownProject.out, /^north\s+approved\s+nick@north\.test\s/m);
  t.regex(shownProject.out, /^south\s+declined\s+sue@south\.test\s/m);
  t.notRegex(shownProject.out, /user:/);
  const projectJson = JSON.parse((await flip(t.context, rita, ["project", "get", projectId, "--json"])).out) as {
    project: { ownerId: string; owner: { email: string }; decisions: { trustCode: string; decidedBy: string }[] };
  };
  t.regex(projectJson.project.ownerId, /^[0-9a-f-]{36}$/);
  t.is(projectJson.project.owner.email, "rita@uni.test");
  t.regex(projectJson.project.decisions.find((d) => d.trustCode === "north")!.decidedBy, /^user:[0-9a-f-]{36}$/);
  t.regex((await flip(t.context, rita, ["project", "list"])).out, /Asthma admissions\s+approved\s+rita@uni\.test\s/);

  const inbox = await flip(t.context, nick, ["project", "decisions", "--trust", "north"]);
  t.regex(inbox.out, /Asthma admissions\s+approved\s+240/);
  const verify = await flip(t.context, adminHome, ["audit", "verify"]);
  t.is(verify.code, 0);
  t.regex(verify.out, /audit chain OK: \d+ entries verified/);
  const decisions = await flip(t.context, adminHome, ["audit", "list", "--action", "project.trust_", "--json"]);
  const actions = (JSON.parse(decisions.out) as { entries: { action: string }[] }).entries.map((e) => e.action);
  t.deepEqual(actions, ["project.trust_approved", "project.trust_declined"]);
  const decisionsShown = (await flip(t.context, adminHome, ["audit", "list", "--action", "project.trust_"])).out;
  t.regex(decisionsShown, /\snick@north\.test\s+project\.trust_approved\s/);
  t.regex(decisionsShown, /\ssue@south\.test\s+project\.trust_declined\s/);
  t.regex((await flip(t.context, adminHome, ["audit", "list", "--action", "trust.registered"])).out, /\sbootstrap admin\s+trust\.registered\s/);
});
