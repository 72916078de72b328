/**
 * Imaging at the trusts, from the hub's side: a real hub and real linked gateways whose imaging handlers
 * are fakes that answer with counts (the imaging service itself is tested in services/imaging). Approval
 * and freeze go through the real governance path; live progress is played by hand on a raw link.
 */
import anyTest, { type TestFn } from "ava";
import { randomUUID } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ImagingService, ImagingState, type TrustImagingStatus } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { DecisionState, FreezeState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, ImagingImportOutputSchema, TaskKind, type ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { applyFreezeTask } from "@flip/hub/projects/freeze.js";
import { readTaskEnded } from "@flip/hub/tasks/task-events.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import type { RunningGateway } from "@flip/trust-gateway/gateway.js";
import type { TaskContext, TaskHandlers } from "@flip/trust-gateway/tasks/task-handler.js";
import { RawLink } from "../support/raw-link.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";
import { startHandlerGateway } from "../support/training.js";

type TrustCode = "north" | "south" | "east";
type Counts = MessageInitShape<typeof ImagingImportOutputSchema>;

/** Holds a trust's imports open until opened. */
class Gate {
  open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
}

interface Ctx {
  t: TestHub;
  trusts: Record<TrustCode, { id: string; apiKey: string }>;
  west: { id: string; apiKey: string };
  gateways: RunningGateway[];
  admin: string;
  alice: string;
  bob: string;
  carol: string;
  nora: string;
  viewer: string;
  /** Every import and delete the fake handlers ran. */
  imports: { trust: TrustCode; projectId: string; nifti: boolean; taskId: string }[];
  deletes: { trust: TrustCode; projectId: string; reason: string }[];
  gates: Map<TrustCode, Gate>;
  /** Whether the gateways send live counts (TaskContext.reportImaging); the raw-link test covers the hub's side regardless. */
  liveHook: boolean;
}
const test = anyTest as TestFn<Ctx>;

const SQL = "select p.person_id, p.gender_concept_id from omop.person p";
const FAILED_REASON = "PACS unreachable after 5 attempts";

const finalCounts = (nifti: boolean): Counts => ({
  studiesRequested: 3n,
  studiesImported: 2n,
  studiesFailed: 1n,
  imagesStored: 240n,
  niftiSeries: nifti ? 4n : 0n,
  reasons: [{ reason: FAILED_REASON, count: 1n }],
});

/** The gateway's hook that sends an import's counts live (TaskProgress.imaging), when the gateway has it. */
type LiveCounts = { reportImaging(counts: ImagingImportOutput): void };

function handlersFor(ctx: Ctx, code: TrustCode): TaskHandlers {
  const governance: TaskHandlers = {
    cohortQuery: async () => ({ outcome: CohortOutcome.OK, recordCount: 120n, threshold: 10 }),
    freezeCohort: async () => ({ personCount: 120n, studyCount: 3n, suppressed: false, querySha256: "x" }),
  };
  // East runs no imaging service.
  if (code === "east") return governance;
  return {
    ...governance,
    imagingImport: async (spec, task: TaskContext) => {
      ctx.imports.push({ trust: code, projectId: spec.projectId, nifti: spec.convertToNifti, taskId: task.taskId });
      const live = (task as Partial<LiveCounts>).reportImaging;
      if (live) {
        ctx.liveHook = true;
        live.call(task, create(ImagingImportOutputSchema, { studiesRequested: 3n, studiesQueued: 3n }));
      }
      const gate = ctx.gates.get(code);
      if (gate) {
        await new Promise<void>((resolve, reject) => {
          void gate.opened.then(resolve);
          task.signal.addEventListener("abort", () => reject(task.signal.reason as Error), { once: true });
        });
      }
      return finalCounts(spec.convertToNifti);
    },
    imagingDelete: async (spec) => {
      ctx.deletes.push({ trust: code, projectId: spec.projectId, reason: spec.reason });
      return { studiesDeleted: 2n, imagesDeleted: 240n, niftiDeleted: 0n };
    },
  };
}

test.before(async (t) => {
  const hub = await startTestHub();
  const trusts = {} as Ctx["trusts"];
  for (const code of ["north", "south", "east"] as const) trusts[code] = await hub.registerTrust(code);
  // West is played by hand on a raw link in one test (its cohort answers stay pending meanwhile).
  const west = await hub.registerTrust("west");
  const admin = (await hub.firstAdmin()).token;
  const ctx: Ctx = {
    t: hub,
    trusts,
    west,
    gateways: [],
    admin,
    alice: (await hub.user(admin, "alice@uni.test", [{ role: Role.RESEARCHER }])).token,
    bob: (await hub.user(admin, "bob@uni.test", [{ role: Role.RESEARCHER }])).token,
    carol: (await hub.user(admin, "carol@uni.test", [{ role: Role.RESEARCHER }])).token,
    nora: (await hub.user(admin, "nora@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }])).token,
    viewer: (await hub.user(admin, "vic@uni.test", [{ role: Role.VIEWER }])).token,
    imports: [],
    deletes: [],
    gates: new Map(),
    liveHook: false,
  };
  for (const code of ["north", "south", "east"] as const) {
    ctx.gateways.push(await startHandlerGateway(hub.hub.url, { code, apiKey: trusts[code].apiKey }, handlersFor(ctx, code), { capacity: new Map() }));
  }
  t.context = ctx;
});

test.after.always(async (t) => {
  for (const g of t.context.gateways ?? []) await g.close();
  await t.context.t?.close();
});

/** Who decides for a trust: north has its own Trust Admin; the others are decided by the hub Admin. */
const deciderOf = (c: Ctx, code: TrustCode) => (code === "north" ? c.nora : c.admin);

/** A project of alice (bob is a member) staged at `staged`, approved at `approved`, with their cohorts frozen. */
async function approvedProject(c: Ctx, name: string, staged: TrustCode[], approved: TrustCode[] = staged): Promise<string> {
  const { project } = await c.t.client(ProjectService, c.alice).createProject({ name, description: "imaging test", members: ["bob@uni.test"] });
  const projectId = project!.id;
  const { query } = await c.t.client(CohortService, c.alice).submitCohortQuery({ projectId, sql: SQL });
  await eventually(
    () => c.t.client(CohortService, c.alice).getCohortQuery({ queryId: query!.id }),
    (r) => staged.every((code) => r.query!.answers.find((a) => a.trustCode === code)?.state === TrustAnswerState.OK),
    { timeoutMs: 20_000, what: `${staged.join(", ")} answered the cohort query` },
  );
  await c.t.client(ProjectService, c.alice).stageProject({ projectId, trusts: staged });
  for (const code of approved) {
    await c.t.client(ProjectService, deciderOf(c, code)).decideProject({ projectId, trust: code, decision: DecisionState.APPROVED, reason: "ethics 42" });
  }
  await eventually(
    async () => (await c.t.client(ProjectService, c.alice).getProject({ projectId })).project!,
    (p) => approved.every((code) => p.decisions.find((d) => d.trustCode === code)?.freezeState === FreezeState.FROZEN),
    { timeoutMs: 20_000, what: `${approved.join(", ")} froze the cohort` },
  );
  return projectId;
}

async function statusOf(c: Ctx, projectId: string, token = c.alice): Promise<Record<string, TrustImagingStatus>> {
  const { trusts } = await c.t.client(ImagingService, token).getImagingStatus({ projectId });
  return Object.fromEntries(trusts.map((s) => [s.trustCode, s]));
}

async function untilStatus(c: Ctx, projectId: string, ok: (s: Record<string, TrustImagingStatus>) => boolean, what: string, token = c.alice) {
  return await eventually(() => statusOf(c, projectId, token), ok, { timeoutMs: 20_000, what });
}

async function taskCount(c: Ctx, projectId: string, kind: string, trustId?: string): Promise<number> {
  const [row] = await c.t.hub.db
    .em()
    .execute<{ n: string }[]>("select count(*) as n from task where project_id = ? and kind = ? and (?::uuid is null or trust_id = ?::uuid)", [projectId, kind, trustId ?? null, trustId ?? null]);
  return Number(row!.n);
}

async function auditAfter(c: Ctx, action: string, projectId: string): Promise<Record<string, unknown>[]> {
  const { entries } = await c.t.client(AuditService, c.admin).listAuditEntries({ actionPrefix: action, target: `project:${projectId}`, page: { pageSize: 100 } });
  return entries.map((e) => JSON.parse(e.afterJson) as Record<string, unknown>);
}

const settled = (s: TrustImagingStatus | undefined) => s?.state === ImagingState.DONE;

test.serial("an approval makes the trust import its frozen cohort's studies once, and the project's members see the counts", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "Imaging on approval", ["north", "south"]);
  const status = await untilStatus(c, projectId, (s) => settled(s.north) && settled(s.south), "both imports done");
  for (const code of ["north", "south"] as const) {
    const s = status[code]!;
    t.is(s.counts?.studiesRequested, 3n);
    t.is(s.counts?.studiesImported, 2n);
    t.is(s.counts?.studiesFailed, 1n);
    t.deepEqual(
      s.counts?.reasons.map((r) => [r.reason, r.count]),
      [[FAILED_REASON, 1n]],
    );
    t.false(s.convertToNifti, "no NIfTI unless asked");
    t.is(s.error, "");
    t.regex(s.taskId, /^[0-9a-f-]{36}$/);
    t.is(await taskCount(c, projectId, "imaging_import", c.trusts[code].id), 1, `one import task for ${code}`);
  }
  t.false(c.imports.some((i) => i.projectId === projectId && i.nifti));

  // The freeze outcome applied again (a reconcile after a missed notice, a second replica) asks for nothing more.
  const em = c.t.hub.db.em();
  const [row] = await em.execute<{ freeze_task_id: string }[]>("select freeze_task_id from project_trust where project_id = ? and trust_id = ?", [projectId, c.trusts.north.id]);
  const ended = await readTaskEnded(em, row!.freeze_task_id);
  t.false(await applyFreezeTask(c.t.hub.db.em(), ended!));
  t.is(await taskCount(c, projectId, "imaging_import"), 2);

  // Members and Viewers read the status too; they see counts, nothing else.
  t.is((await statusOf(c, projectId, c.bob)).north?.state, ImagingState.DONE);
  t.is((await statusOf(c, projectId, c.viewer)).south?.state, ImagingState.DONE);
  t.is((await statusOf(c, projectId, c.nora)).north?.state, ImagingState.DONE, "a Trust Admin of a trust it is staged at");
});

test.serial("importing with NIfTI conversion is remembered for the trusts that approve later", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "NIfTI choice", ["north", "south"], ["north"]);
  await untilStatus(c, projectId, (s) => settled(s.north), "north's first import done");
  t.is((await statusOf(c, projectId)).south?.state, ImagingState.NOT_REQUESTED, "south has not approved yet");

  const { trusts } = await c.t.client(ImagingService, c.alice).importImaging({ projectId, convertToNifti: true });
  t.deepEqual(
    trusts.map((s) => [s.trustCode, s.state]),
    [
      ["north", ImagingState.IMPORTING],
      ["south", ImagingState.NOT_REQUESTED],
    ],
    "without trusts: every trust that approved and froze",
  );
  const north = await untilStatus(c, projectId, (s) => settled(s.north) && s.north!.convertToNifti, "north's NIfTI import done");
  t.is(north.north!.counts?.niftiSeries, 4n);

  await c.t.client(ProjectService, c.admin).decideProject({ projectId, trust: "south", decision: DecisionState.APPROVED });
  const south = await untilStatus(c, projectId, (s) => settled(s.south), "south's import done");
  t.true(south.south!.convertToNifti, "the later approval imports with the project's choice");
  t.deepEqual(
    c.imports.filter((i) => i.projectId === projectId).map((i) => [i.trust, i.nifti]),
    [
      ["north", false],
      ["north", true],
      ["south", true],
    ],
  );
  const audit = await eventually(() => auditAfter(c, "imaging.import_requested", projectId), (a) => a.length === 1, { what: "the request audited" });
  t.like(audit[0], { convertToNifti: true, started: ["north"], kept: [] });
});

test.serial("asked before any trust approved, an import only sets the NIfTI choice the approvals then use", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "NIfTI first", ["south"], []);
  const { trusts } = await c.t.client(ImagingService, c.alice).importImaging({ projectId, convertToNifti: true });
  t.deepEqual(
    trusts.map((s) => [s.trustCode, s.state]),
    [["south", ImagingState.NOT_REQUESTED]],
  );
  t.is(await taskCount(c, projectId, "imaging_import"), 0);
  await c.t.client(ProjectService, c.admin).decideProject({ projectId, trust: "south", decision: DecisionState.APPROVED });
  const south = await untilStatus(c, projectId, (s) => settled(s.south), "south's import done");
  t.true(south.south!.convertToNifti);
  t.is(south.south!.counts?.niftiSeries, 4n);
});

test.serial("an import still running is kept when asked again, and replaced when the NIfTI choice changes", async (t) => {
  const c = t.context;
  const gate = new Gate();
  c.gates.set("south", gate);
  try {
    const projectId = await approvedProject(c, "Running import", ["south"]);
    const first = await untilStatus(c, projectId, (s) => s.south?.state === ImagingState.IMPORTING, "south importing");
    await eventually(() => c.imports.find((i) => i.projectId === projectId), Boolean, { what: "the import reached south" });
    if (c.liveHook) await untilStatus(c, projectId, (s) => s.south?.counts?.studiesQueued === 3n, "south's live counts");
    else t.log("the gateway sends no live counts (no TaskContext.reportImaging): only final counts are checked here");
    const imaging = c.t.client(ImagingService, c.alice);
    const again = await imaging.importImaging({ projectId, trusts: ["south"] });
    t.is(again.trusts[0]!.taskId, first.south!.taskId, "same choice: the running import is kept");
    const replaced = await imaging.importImaging({ projectId, trusts: [c.trusts.south.id], convertToNifti: true });
    t.not(replaced.trusts[0]!.taskId, first.south!.taskId, "another choice: a new import");
    const [old] = await c.t.hub.db.em().execute<{ state: string }[]>("select state from task where id = ?", [first.south!.taskId]);
    t.is(old!.state, "cancelled");
    gate.open();
    const done = await untilStatus(c, projectId, (s) => settled(s.south), "south's replacing import done");
    t.is(done.south!.taskId, replaced.trusts[0]!.taskId);
    t.true(done.south!.convertToNifti);
  } finally {
    c.gates.delete("south");
    gate.open();
  }
});

test.serial("only the owner or an Admin asks for imports; bad input is refused naming the field", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "Import rules", ["north", "south"], ["north"]);
  const as = (token: string) => c.t.client(ImagingService, token);
  t.is((await connectErrorOf(as(c.carol).importImaging({ projectId }))).code, Code.NotFound, "a researcher outside the project does not learn it exists");
  t.is((await connectErrorOf(as(c.carol).getImagingStatus({ projectId }))).code, Code.NotFound);
  t.is((await connectErrorOf(as(c.bob).importImaging({ projectId }))).code, Code.PermissionDenied, "a member reads but does not import");
  t.is((await connectErrorOf(as(c.viewer).importImaging({ projectId }))).code, Code.PermissionDenied);
  const bad = await connectErrorOf(as(c.alice).importImaging({ projectId: "not-a-uuid" }));
  t.is(bad.code, Code.InvalidArgument);
  t.regex(bad.rawMessage, /^project_id: /);
  t.is((await connectErrorOf(as(c.alice).getImagingStatus({ projectId: "" }))).code, Code.InvalidArgument);
  const empty = await connectErrorOf(as(c.alice).importImaging({ projectId, trusts: [" "] }));
  t.is(empty.code, Code.InvalidArgument);
  t.regex(empty.rawMessage, /^trusts\[0\]: /);
  t.is((await connectErrorOf(as(c.alice).importImaging({ projectId, trusts: ["nowhere"] }))).code, Code.NotFound);
  const pending = await connectErrorOf(as(c.alice).importImaging({ projectId, trusts: ["south"] }));
  t.is(pending.code, Code.FailedPrecondition);
  t.regex(pending.rawMessage, /trust "south" has not approved this project \(its decision: pending\)/);
  const unstaged = await connectErrorOf(as(c.alice).importImaging({ projectId, trusts: ["east"] }));
  t.is(unstaged.code, Code.FailedPrecondition);
  t.regex(unstaged.rawMessage, /not staged at trust "east"/);

  await c.t.client(AdminService, c.admin).setDeploymentMode({ enabled: true });
  try {
    const paused = await connectErrorOf(as(c.alice).importImaging({ projectId }));
    t.is(paused.code, Code.FailedPrecondition);
    t.regex(paused.rawMessage, /deployment mode/);
  } finally {
    await c.t.client(AdminService, c.admin).setDeploymentMode({ enabled: false });
  }
  t.is((await as(c.admin).importImaging({ projectId, trusts: ["north"] })).trusts.find((s) => s.trustCode === "north")!.state, ImagingState.IMPORTING, "an Admin may");
  await untilStatus(c, projectId, (s) => settled(s.north), "north's import done");
});

test.serial("a trust that runs no imaging service fails its import at once, with a reason a researcher can act on", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "No imaging", ["east"]);
  const status = await untilStatus(c, projectId, (s) => s.east?.state === ImagingState.FAILED, "east's import failed");
  t.regex(status.east!.error, /^unsupported: trust "east" runs no imaging service/);
  const [task] = await c.t.hub.db.em().execute<{ state: string; attempt: number }[]>("select state, attempt from task where id = ?", [status.east!.taskId]);
  t.like(task, { state: "failed", attempt: 0 });
  const again = await c.t.client(ImagingService, c.alice).importImaging({ projectId, trusts: ["east"] });
  t.is(again.trusts[0]!.state, ImagingState.FAILED, "asked again while the gateway still runs none, the answer says so at once");
  t.regex(again.trusts[0]!.error, /runs no imaging service/);
});

test.serial("deleting a project deletes its research copies at every trust that imported them, and audits what each deleted", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "Deleted with images", ["north", "south", "east"]);
  await untilStatus(c, projectId, (s) => settled(s.north) && settled(s.south) && s.east?.state === ImagingState.FAILED, "imports ended");
  await c.t.client(ProjectService, c.alice).deleteProject({ projectId });
  t.is((await connectErrorOf(c.t.client(ImagingService, c.alice).getImagingStatus({ projectId }))).code, Code.NotFound, "the owner no longer sees the project");
  const status = await untilStatus(
    c,
    projectId,
    (s) => ["north", "south", "east"].every((code) => s[code]?.state === ImagingState.DELETED),
    "every trust's copies deleted (as an Admin sees it)",
    c.admin,
  );
  t.is(status.north!.error, "");
  t.deepEqual(
    c.deletes.filter((d) => d.projectId === projectId).map((d) => [d.trust, d.reason]).sort(),
    [
      ["north", "project deleted"],
      ["south", "project deleted"],
    ],
    "east never received an import, so it holds nothing to delete",
  );
  const audit = await eventually(() => auditAfter(c, "imaging.deleted", projectId), (a) => a.length === 3, { what: "three deletions audited" });
  const byTrust = Object.fromEntries(audit.map((a) => [a.trust as string, a]));
  t.like(byTrust.north, { reason: "project deleted", studiesDeleted: 2, imagesDeleted: 240, niftiDeleted: 0 });
  t.like(byTrust.south, { studiesDeleted: 2, imagesDeleted: 240 });
  t.like(byTrust.east, { studiesDeleted: 0, nothingImported: true });
  await c.t.client(ProjectService, c.alice).deleteProject({ projectId });
  t.is(await taskCount(c, projectId, "imaging_delete"), 2, "deleting again sends nothing more");
});

test.serial("a trust's admin withdraws its approval: the trust deletes its copies and takes no part in new jobs", async (t) => {
  const c = t.context;
  const projectId = await approvedProject(c, "Withdrawn", ["north", "south", "east"], ["north", "south"]);
  await untilStatus(c, projectId, (s) => settled(s.north) && settled(s.south), "imports done");
  const withdraw = (token: string, trust: string, reason = "consent withdrawn by the ethics committee") =>
    c.t.client(ProjectService, token).withdrawApproval({ projectId, trust, reason });

  t.is((await connectErrorOf(withdraw(c.alice, "north"))).code, Code.PermissionDenied, "not the owner");
  t.is((await connectErrorOf(withdraw(c.admin, "north"))).code, Code.PermissionDenied, "not the hub Admin for a trust with its own Trust Admin");
  t.is((await connectErrorOf(withdraw(c.carol, "north"))).code, Code.NotFound);
  const noReason = await connectErrorOf(withdraw(c.nora, "north", "  "));
  t.is(noReason.code, Code.InvalidArgument);
  t.regex(noReason.rawMessage, /^reason: /);
  const pending = await connectErrorOf(withdraw(c.admin, "east"));
  t.is(pending.code, Code.FailedPrecondition, "only an approval can be withdrawn");
  t.regex(pending.rawMessage, /trust "east" has not approved/);

  const { project } = await withdraw(c.nora, "north");
  t.is(project!.decisions.find((d) => d.trustCode === "north")!.state, DecisionState.WITHDRAWN);
  t.is(project!.decisions.find((d) => d.trustCode === "south")!.state, DecisionState.APPROVED);
  t.is((await withdraw(c.nora, "north", "again")).project!.decisions.find((d) => d.trustCode === "north")!.state, DecisionState.WITHDRAWN, "idempotent");

  const status = await untilStatus(c, projectId, (s) => s.north?.state === ImagingState.DELETED, "north's copies deleted");
  t.is(status.south!.state, ImagingState.DONE, "the other trusts keep theirs");
  t.deepEqual(
    c.deletes.filter((d) => d.projectId === projectId).map((d) => [d.trust, d.reason]),
    [["north", "approval withdrawn"]],
  );
  const withdrawals = await eventually(() => auditAfter(c, "project.approval_withdrawn", projectId), (a) => a.length === 1, { what: "the withdrawal audited" });
  t.like(withdrawals[0], { trust: "north", decision: "withdrawn", reason: "consent withdrawn by the ethics committee" });
  t.is((await eventually(() => auditAfter(c, "imaging.deleted", projectId), (a) => a.length === 1, { what: "the deletion audited" }))[0]!.trust, "north");

  const decided = await connectErrorOf(c.t.client(ProjectService, c.nora).decideProject({ projectId, trust: "north", decision: DecisionState.APPROVED }));
  t.is(decided.code, Code.FailedPrecondition);
  t.regex(decided.rawMessage, /withdrew its approval/);
  const reimport = await connectErrorOf(c.t.client(ImagingService, c.alice).importImaging({ projectId, trusts: ["north"] }));
  t.is(reimport.code, Code.FailedPrecondition);
  t.regex(reimport.rawMessage, /trust "north" withdrew its approval/);
  const { model } = await c.t.client(ModelService, c.alice).createModel({ projectId, name: "after withdrawal", image: "flip/train-numpy:1" });
  const job = await connectErrorOf(c.t.client(JobService, c.alice).createJob({ modelId: model!.id, trusts: ["north"], rounds: 1 }));
  t.is(job.code, Code.FailedPrecondition);
  t.regex(job.rawMessage, /trust "north" withdrew its approval of this project/);
  const inbox = await c.t.client(ProjectService, c.nora).listTrustDecisions({ trust: "north" });
  t.is(inbox.items.find((i) => i.project?.id === projectId)?.decision?.state, DecisionState.WITHDRAWN);
});

test.serial("a trust's live counts show while its import runs; an import still progressing at its deadline continues in a new task", async (t) => {
  const c = t.context;
  const west = c.west;
  const link = RawLink.open(c.t.hub.url, west.apiKey, { trustCode: "west", hello: { capacity: [{ kind: TaskKind.IMAGING_IMPORT, maxConcurrent: 2 }] } });
  try {
    await link.next("welcome");
    const { project } = await c.t.client(ProjectService, c.alice).createProject({ name: "Live counts", description: "" });
    const projectId = project!.id;
    // Governance is covered above: the rows are written as an approval and freeze leave them.
    const em = c.t.hub.db.em();
    await em.execute("update project set status = 'approved' where id = ?", [projectId]);
    await em.execute(
      `insert into project_trust (project_id, trust_id, state, decided_as, decided_by, decided_at, freeze_state, frozen_person_count, staged_at)
       values (?, ?, 'approved', 'hub', 'test', now(), 'frozen', 120, now())`,
      [projectId, west.id],
    );
    await c.t.client(ImagingService, c.alice).importImaging({ projectId });
    const offer = await link.next("offer", 10_000, (o) => o.kind === TaskKind.IMAGING_IMPORT);
    const progress = (taskId: string, counts: Counts) => link.send({ case: "progress", value: { taskId, fraction: 0.3, message: "importing", imaging: counts } });

    progress(randomUUID(), { studiesRequested: 99n, studiesImported: 99n });
    progress(offer.taskId, { studiesRequested: 3n, studiesImported: 1n, studiesQueued: 2n, waitingForWindow: true });
    const live = await untilStatus(c, projectId, (s) => s.west?.counts?.studiesImported === 1n, "west's live counts");
    t.is(live.west!.state, ImagingState.IMPORTING);
    t.true(live.west!.counts!.waitingForWindow);
    t.is(live.west!.counts!.studiesQueued, 2n, "a report for another task changed nothing");

    // The deadline passes while studies are still queued: the import goes on in a new task.
    await em.execute("update task set deadline = now() where id = ?", [offer.taskId]);
    const next = await link.next("offer", 15_000, (o) => o.kind === TaskKind.IMAGING_IMPORT);
    t.not(next.taskId, offer.taskId);
    const continued = await untilStatus(c, projectId, (s) => s.west?.taskId === next.taskId, "west follows the new task");
    t.is(continued.west!.state, ImagingState.IMPORTING);
    t.is(continued.west!.counts?.studiesImported, 1n, "the counts so far are kept");

    const final: Counts = { studiesRequested: 3n, studiesImported: 3n, imagesStored: 300n };
    const result = { taskId: next.taskId, attempt: next.attempt, outcome: { case: "output" as const, value: { kind: { case: "imagingImport" as const, value: final } } } };
    link.send({ case: "result", value: result });
    await link.next("resultAck", 10_000, (a) => a.taskId === next.taskId);
    // A late report must not take the counts back; the repeated result's ack says it was handled.
    progress(next.taskId, { studiesRequested: 3n, studiesImported: 2n });
    link.send({ case: "result", value: result });
    t.false((await link.next("resultAck", 10_000, (a) => a.taskId === next.taskId)).recorded);
    const done = await untilStatus(c, projectId, (s) => s.west?.state === ImagingState.DONE, "west done");
    t.is(done.west!.counts?.studiesImported, 3n);
    t.is(done.west!.counts?.imagesStored, 300n);
    t.false(done.west!.counts!.waitingForWindow);
  } finally {
    link.close();
  }
});

test.serial("a hub restart in the middle of an import neither loses nor repeats it", async (t) => {
  const c = t.context;
  const before = await approvedProject(c, "Done before restart", ["south"]);
  await untilStatus(c, before, (s) => settled(s.south), "the first import done");
  const gate = new Gate();
  c.gates.set("north", gate);
  try {
    const projectId = await approvedProject(c, "Restarted", ["north"]);
    await eventually(() => c.imports.find((i) => i.projectId === projectId), Boolean, { what: "the import reached north" });
    const em = () => c.t.hub.db.em();
    const [link] = await em().execute<{ stream_id: string }[]>("select stream_id from trust_link where trust_id = ?", [c.trusts.north.id]);
    await c.t.restart();
    await eventually(
      async () => (await em().execute<{ stream_id: string }[]>("select stream_id from trust_link where trust_id = ?", [c.trusts.north.id]))[0]?.stream_id,
      (s) => s !== undefined && s !== link?.stream_id,
      { timeoutMs: 20_000, what: "north linked again" },
    );
    t.is((await statusOf(c, projectId)).north?.state, ImagingState.IMPORTING);
    gate.open();
    await untilStatus(c, projectId, (s) => settled(s.north), "north's import done after the restart");
    t.is(await taskCount(c, projectId, "imaging_import"), 1, "one import, not two");
    t.is(c.imports.filter((i) => i.projectId === projectId).length, 1, "the gateway ran it once");
    t.true(settled((await statusOf(c, before)).south));
    t.is(await taskCount(c, before, "imaging_import"), 1);
  } finally {
    c.gates.delete("north");
    gate.open();
  }
});
