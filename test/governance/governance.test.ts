import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionState, FreezeState, ProjectService, ProjectStatus } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, TaskOutputSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { TaskErrorCode, TaskErrorSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { appendAudit } from "@flip/hub/audit/chain.js";
import { recordResult } from "@flip/hub/tasks/task-outcomes.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import pg from "pg";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  t: TestHub;
  trusts: Record<string, string>;
  admin: string;
  alice: string;
  bob: string;
  viewer: string;
  nora: string;
}
const test = anyTest as TestFn<Ctx>;

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

const SQL = "select p.person_id, p.gender_concept_id from omop.person p";

/** Plays a trust's part: records the trust's answer through the hub's own result path (as the link does). */
async function answer(ctx: Ctx, queryId: string, trust: string, outcome: { count: number } | "suppressed" | "error"): Promise<void> {
  const em = ctx.t.hub.db.em();
  const [row] = await em.execute<{ task_id: string }[]>("select task_id from cohort_answer where query_id = ? and trust_id = ?", [queryId, ctx.trusts[trust]!]);
  const result =
    outcome === "error"
      ? { case: "error" as const, value: create(TaskErrorSchema, { code: TaskErrorCode.INVALID, message: "table omop.secret is not an OMOP table", retryable: false }) }
      : {
          case: "output" as const,
          value: create(TaskOutputSchema, {
            kind: {
              case: "cohortQuery",
              value: outcome === "suppressed" ? { outcome: CohortOutcome.SUPPRESSED, recordCount: 0n, threshold: 10 } : { outcome: CohortOutcome.OK, recordCount: BigInt(outcome.count), threshold: 10 },
            },
          }),
        };
  await recordResult(em, ctx.trusts[trust]!, row!.task_id, result);
}

async function freezeDone(ctx: Ctx, projectId: string, trust: string, persons: number): Promise<void> {
  const em = ctx.t.hub.db.em();
  const [row] = await em.execute<{ freeze_task_id: string }[]>("select freeze_task_id from project_trust where project_id = ? and trust_id = ?", [projectId, ctx.trusts[trust]!]);
  await recordResult(em, ctx.trusts[trust]!, row!.freeze_task_id, {
    case: "output",
    value: create(TaskOutputSchema, { kind: { case: "freezeCohort", value: { personCount: BigInt(persons), studyCount: 3n, suppressed: false, querySha256: "x" } } }),
  });
}

/** A project of `owner` with an answered cohort query: north 120, south 45, east suppressed. */
async function answeredProject(ctx: Ctx, owner: string, name: string): Promise<string> {
  const { project } = await ctx.t.client(ProjectService, owner).createProject({ name, description: "test" });
  const { query } = await ctx.t.client(CohortService, owner).submitCohortQuery({ projectId: project!.id, sql: SQL });
  await answer(ctx, query!.id, "north", { count: 120 });
  await answer(ctx, query!.id, "south", { count: 45 });
  await answer(ctx, query!.id, "east", "suppressed");
  await eventually(() => ctx.t.client(CohortService, owner).getCohortQuery({ queryId: query!.id }), (r) => r.query!.complete, { timeoutMs: 15_000, what: "every answer recorded" });
  return project!.id;
}

test.before(async (t) => {
  const hub = await startTestHub();
  const trusts: Record<string, string> = {};
  for (const code of ["north", "south", "east"]) trusts[code] = (await hub.registerTrust(code)).id;
  const admin = (await hub.firstAdmin()).token;
  t.context = {
    t: hub,
    trusts,
    admin,
    alice: (await hub.user(admin, "alice@uni.test", [{ role: Role.RESEARCHER }])).token,
    bob: (await hub.user(admin, "bob@uni.test", [{ role: Role.RESEARCHER }])).token,
    viewer: (await hub.user(admin, "vic@uni.test", [{ role: Role.VIEWER }])).token,
    nora: (await hub.user(admin, "nora@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }])).token,
  };
});

test.after.always(async (t) => {
  await t.context.t?.close();
});

test.serial("a researcher's cohort query shows each trust's answer and the total over usable answers", async (t) => {
  const { project } = await t.context.t.client(ProjectService, t.context.alice).createProject({ name: "Diabetes outcomes", description: "" });
  const cohorts = t.context.t.client(CohortService, t.context.alice);
  const { query } = await cohorts.submitCohortQuery({ projectId: project!.id, sql: SQL });
  t.is(query!.answers.length, 3);
  t.true(query!.answers.every((a) => a.state === TrustAnswerState.PENDING || a.state === TrustAnswerState.OFFLINE));
  await answer(t.context, query!.id, "north", { count: 120 });
  await answer(t.context, query!.id, "south", "error");
  await answer(t.context, query!.id, "east", "suppressed");
  const done = (await eventually(() => cohorts.getCohortQuery({ queryId: query!.id }), (r) => r.query!.complete, { timeoutMs: 15_000, what: "every answer recorded" })).query!;
  const byTrust = Object.fromEntries(done.answers.map((a) => [a.trustCode, a]));
  t.is(byTrust.north!.state, TrustAnswerState.OK);
  t.is(byTrust.north!.recordCount, 120n);
  t.is(byTrust.south!.state, TrustAnswerState.ERROR);
  t.regex(byTrust.south!.error, /^invalid_query: /);
  t.is(byTrust.east!.state, TrustAnswerState.SUPPRESSED);
  t.is(byTrust.east!.recordCount, 0n);
  t.is(done.totalRecordCount, 120n, "only OK answers count toward the total");
});

test.serial("staging needs a usable answer from every chosen trust and makes the project read-only", async (t) => {
  const projectId = await answeredProject(t.context, t.context.alice, "Staging rules");
  const projects = t.context.t.client(ProjectService, t.context.alice);
  t.is(await codeOf(projects.stageProject({ projectId, trusts: ["east"] })), Code.FailedPrecondition, "a suppressed answer cannot be staged");
  t.is(await codeOf(t.context.t.client(ProjectService, t.context.bob).stageProject({ projectId, trusts: ["north"] })), Code.NotFound, "another researcher cannot even see it");
  const staged = (await projects.stageProject({ projectId, trusts: ["north", "south"] })).project!;
  t.is(staged.status, ProjectStatus.STAGED);
  t.deepEqual(staged.decisions.map((d) => [d.trustCode, d.state]), [["north", DecisionState.PENDING], ["south", DecisionState.PENDING]]);
  t.is(await codeOf(projects.updateProject({ projectId, name: "Renamed", description: "" })), Code.FailedPrecondition);
  t.is(await codeOf(t.context.t.client(CohortService, t.context.alice).submitCohortQuery({ projectId, sql: SQL })), Code.FailedPrecondition);
  const unstaged = (await projects.unstageProject({ projectId })).project!;
  t.is(unstaged.status, ProjectStatus.UNSTAGED);
  t.is(unstaged.decisions.length, 0);
});

test.serial("only a trust's own Trust Admin decides for it; the hub Admin decides only for trusts without one", async (t) => {
  const projectId = await answeredProject(t.context, t.context.alice, "Who decides");
  await t.context.t.client(ProjectService, t.context.alice).stageProject({ projectId, trusts: ["north", "south"] });
  const decide = (token: string, trust: string, decision: DecisionState) =>
    t.context.t.client(ProjectService, token).decideProject({ projectId, trust, decision, reason: "ethics approval 123" });
  t.is(await codeOf(decide(t.context.admin, "north", DecisionState.APPROVED)), Code.PermissionDenied, "the hub admin cannot override a trust that has a Trust Admin");
  t.is(await codeOf(decide(t.context.alice, "south", DecisionState.APPROVED)), Code.PermissionDenied, "the owner cannot approve their own project");
  t.is(await codeOf(decide(t.context.nora, "south", DecisionState.APPROVED)), Code.PermissionDenied, "a Trust Admin decides only for their own trust");

  const approved = (await decide(t.context.nora, "north", DecisionState.APPROVED)).project!;
  t.is(approved.status, ProjectStatus.APPROVED);
  const north = approved.decisions.find((d) => d.trustCode === "north")!;
  t.is(north.state, DecisionState.APPROVED);
  t.is(north.freezeState, FreezeState.PENDING, "approval asks the trust to freeze the cohort");
  t.is((await decide(t.context.nora, "north", DecisionState.APPROVED)).project!.status, ProjectStatus.APPROVED, "repeating a decision is harmless");
  t.is(await codeOf(decide(t.context.nora, "north", DecisionState.DECLINED)), Code.FailedPrecondition, "decisions after approval are final");

  const declined = (await decide(t.context.admin, "south", DecisionState.DECLINED)).project!;
  t.is(declined.decisions.find((d) => d.trustCode === "south")!.state, DecisionState.DECLINED);

  await freezeDone(t.context, projectId, "north", 117);
  const frozen = await eventually(
    async () => (await t.context.t.client(ProjectService, t.context.alice).getProject({ projectId })).project!,
    (p) => p.decisions.find((d) => d.trustCode === "north")!.freezeState === FreezeState.FROZEN,
    { timeoutMs: 15_000, what: "north's freeze recorded" },
  );
  t.is(frozen.decisions.find((d) => d.trustCode === "north")!.frozenPersonCount, 117n, "the hub learns only the frozen count");

  const inbox = await t.context.t.client(ProjectService, t.context.nora).listTrustDecisions({ trust: "north" });
  t.true(inbox.items.some((i) => i.project?.id === projectId && i.cohortCount === 120n));
  t.is(await codeOf(t.context.t.client(ProjectService, t.context.nora).listTrustDecisions({ trust: "south" })), Code.PermissionDenied);
});

test.serial("concurrent approvals and declines leave one consistent outcome and one freeze task", async (t) => {
  const projectId = await answeredProject(t.context, t.context.alice, "Concurrent decisions");
  await t.context.t.client(ProjectService, t.context.alice).stageProject({ projectId, trusts: ["south"] });
  const projects = t.context.t.client(ProjectService, t.context.admin);
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      codeOf(projects.decideProject({ projectId, trust: "south", decision: i % 2 === 0 ? DecisionState.APPROVED : DecisionState.DECLINED })),
    ),
  );
  t.true(results.every((r) => r === "ok" || r === Code.FailedPrecondition), `unexpected outcomes ${JSON.stringify(results)}`);
  const project = (await projects.getProject({ projectId })).project!;
  t.is(project.status, ProjectStatus.APPROVED, "some approval won, and approval is final");
  t.is(project.decisions[0]!.state, DecisionState.APPROVED);
  const [tasks] = await t.context.t.hub.db.em().execute<{ n: string }[]>("select count(*) as n from task where project_id = ? and kind = 'freeze_cohort'", [projectId]);
  t.is(Number(tasks!.n), 1, "exactly one freeze task");
});

test.serial("an approved project cannot be unstaged, and a Viewer can read but not create", async (t) => {
  const projectId = await answeredProject(t.context, t.context.alice, "Viewer and final");
  await t.context.t.client(ProjectService, t.context.alice).stageProject({ projectId, trusts: ["south"] });
  await t.context.t.client(ProjectService, t.context.admin).decideProject({ projectId, trust: "south", decision: DecisionState.APPROVED });
  t.is(await codeOf(t.context.t.client(ProjectService, t.context.alice).unstageProject({ projectId })), Code.FailedPrecondition);
  const viewer = t.context.t.client(ProjectService, t.context.viewer);
  t.is((await viewer.getProject({ projectId })).project!.id, projectId);
  t.is(await codeOf(viewer.createProject({ name: "Not allowed" })), Code.PermissionDenied);
  t.is(await codeOf(viewer.stageProject({ projectId, trusts: ["north"] })), Code.PermissionDenied);
});

test.serial("members see a project; removing them hides it again; deletion is soft and idempotent", async (t) => {
  const projects = t.context.t.client(ProjectService, t.context.alice);
  const { project } = await projects.createProject({ name: "Membership", description: "", members: ["bob@uni.test"] });
  const bob = t.context.t.client(ProjectService, t.context.bob);
  t.is((await bob.getProject({ projectId: project!.id })).project!.name, "Membership");
  await projects.removeProjectMember({ projectId: project!.id, user: "bob@uni.test" });
  t.is(await codeOf(bob.getProject({ projectId: project!.id })), Code.NotFound);
  await projects.deleteProject({ projectId: project!.id });
  await projects.deleteProject({ projectId: project!.id });
  t.is(await codeOf(projects.getProject({ projectId: project!.id })), Code.NotFound);
  t.is(await codeOf(projects.addProjectMember({ projectId: project!.id, user: "nobody@nowhere.test" })), Code.NotFound);
});

test.serial("deployment mode pauses new work and says when it is safe to redeploy", async (t) => {
  const admin = t.context.t.client(AdminService, t.context.admin);
  const { project } = await t.context.t.client(ProjectService, t.context.alice).createProject({ name: "Paused work" });
  await admin.setDeploymentMode({ enabled: true });
  t.is(await codeOf(t.context.t.client(CohortService, t.context.alice).submitCohortQuery({ projectId: project!.id, sql: SQL })), Code.FailedPrecondition);
  const mode = await admin.getDeploymentMode({});
  t.true(mode.enabled);
  t.is(await codeOf(t.context.t.client(AdminService, t.context.alice).setDeploymentMode({ enabled: false })), Code.PermissionDenied);
  await admin.setDeploymentMode({ enabled: false });
  t.is(await codeOf(t.context.t.client(CohortService, t.context.alice).submitCohortQuery({ projectId: project!.id, sql: SQL })), "ok");
});

test.serial("every decision is in the hash-chained audit log, and tampering with any row is detected", async (t) => {
  const audit = t.context.t.client(AuditService, t.context.admin);
  const { entries } = await audit.listAuditEntries({ actionPrefix: "project.trust_", page: { pageSize: 500 } });
  t.true(entries.some((e) => e.action === "project.trust_approved"));
  t.true(entries.some((e) => e.action === "project.trust_declined"));
  t.true((await audit.verifyAuditChain({})).ok);
  t.is(await codeOf(t.context.t.client(AuditService, t.context.alice).verifyAuditChain({})), Code.PermissionDenied);

  const target = entries[0]!;
  const sql = new pg.Client({ connectionString: t.context.t.db.url });
  await sql.connect();
  try {
    // Even a database superuser who bypasses the append-only trigger cannot hide an edit.
    await sql.query("alter table audit_entry disable trigger audit_entry_no_update");
    await sql.query("update audit_entry set actor = 'someone-else' where seq = $1", [target.seq.toString()]);
    const broken = await audit.verifyAuditChain({});
    t.false(broken.ok);
    t.is(broken.firstBrokenSeq, target.seq);
    await sql.query("update audit_entry set actor = $1 where seq = $2", [target.actor, target.seq.toString()]);
    t.true((await audit.verifyAuditChain({})).ok);
    await sql.query("alter table audit_entry enable trigger audit_entry_no_update");
    await t.throwsAsync(sql.query("delete from audit_entry where seq = $1", [target.seq.toString()]), { message: /append-only/ });
  } finally {
    await sql.end();
  }
});

test.serial("the audit log names the user behind each user actor, and no one behind the hub itself or the bootstrap admin", async (t) => {
  await t.context.t.hub.db.em().transactional((tx) => appendAudit(tx, { actor: "system", action: "test.system_acted", target: "test:1" }));
  const audit = t.context.t.client(AuditService, t.context.admin);
  const list = async (actionPrefix: string) => (await audit.listAuditEntries({ actionPrefix, page: { pageSize: 500 } })).entries;

  const approvals = await list("project.trust_approved");
  t.true(approvals.length > 0);
  for (const e of approvals) {
    t.regex(e.actor, /^user:/, "the actor keeps the user's id");
    t.is(e.actorPerson?.userId, e.actor.slice("user:".length));
  }
  t.true(approvals.some((e) => e.actorPerson?.email === "nora@north.test" && e.actorPerson.name === "nora"));

  const [system] = await list("test.system_acted");
  t.is(system!.actor, "system");
  t.is(system!.actorPerson, undefined);
  const registrations = await list("trust.registered");
  t.true(registrations.length > 0);
  t.true(registrations.every((e) => e.actor === "bootstrap-admin" && e.actorPerson === undefined));
});
