import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionMaker, DecisionState, FreezeState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { ActivityOutcome, TrustService, type TrustActivity } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, TaskKind, TaskOutputSchema, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { TaskErrorCode, TaskErrorSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { createTasks } from "@flip/hub/tasks/create-task.js";
import { recordResult } from "@flip/hub/tasks/task-outcomes.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { runCliCaptured } from "../../tools/src/cli/run-captured.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

/**
 * A trust's ledger (TrustService.ListTrustActivity): what the hub sent the trust and what came of it,
 * for the trust's own Trust Admins and Admin. One study runs through discovery, approval, freeze,
 * import and training at north, with a refused query and a diagnostic beside it.
 */
interface Ctx {
  t: TestHub;
  trusts: Record<string, string>;
  admin: string;
  alice: { id: string; token: string };
  nora: string;
  sam: string;
  viewer: string;
  studyId: string;
  refusedId: string;
  jobId: string;
}
const test = anyTest as TestFn<Ctx>;

const SQL = "select p.person_id from omop.person p where p.year_of_birth < 1970";

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

/** Plays the trust's part in a cohort query, through the hub's own result path (as the link does). */
async function answer(ctx: Ctx, queryId: string, trust: string, outcome: { count: number } | "suppressed" | "refused"): Promise<void> {
  const em = ctx.t.hub.db.em();
  const [row] = await em.execute<{ task_id: string }[]>("select task_id from cohort_answer where query_id = ? and trust_id = ?", [queryId, ctx.trusts[trust]!]);
  await recordResult(
    em,
    ctx.trusts[trust]!,
    row!.task_id,
    outcome === "refused"
      ? { case: "error", value: create(TaskErrorSchema, { code: TaskErrorCode.INVALID, message: "select_only: only SELECT statements are allowed", retryable: false }) }
      : {
          case: "output",
          value: create(TaskOutputSchema, {
            kind: {
              case: "cohortQuery",
              value: outcome === "suppressed" ? { outcome: CohortOutcome.SUPPRESSED, recordCount: 0n, threshold: 10 } : { outcome: CohortOutcome.OK, recordCount: BigInt(outcome.count), threshold: 10 },
            },
          }),
        },
  );
}

/** A project of alice's with a cohort query answered by each trust as `outcomes` says; returns its id. */
async function queriedProject(ctx: Ctx, name: string, outcomes: Record<string, Parameters<typeof answer>[3]>): Promise<string> {
  const { project } = await ctx.t.client(ProjectService, ctx.alice.token).createProject({ name, description: "ledger test" });
  const { query } = await ctx.t.client(CohortService, ctx.alice.token).submitCohortQuery({ projectId: project!.id, name: `${name} query`, sql: SQL });
  for (const [trust, outcome] of Object.entries(outcomes)) await answer(ctx, query!.id, trust, outcome);
  await eventually(() => ctx.t.client(CohortService, ctx.alice.token).getCohortQuery({ queryId: query!.id }), (r) => r.query!.complete, { timeoutMs: 15_000, what: "every answer recorded" });
  return project!.id;
}

const ledger = (ctx: Ctx, token: string, trust: string, extra: { kinds?: TaskKind[]; pageSize?: number; pageToken?: string } = {}) =>
  ctx.t.client(TrustService, token).listTrustActivity({ trust, kinds: extra.kinds ?? [], page: { pageSize: extra.pageSize ?? 0, pageToken: extra.pageToken ?? "" } });

test.before(async (t) => {
  const hub = await startTestHub();
  const trusts: Record<string, string> = {};
  for (const code of ["north", "south"]) trusts[code] = (await hub.registerTrust(code)).id;
  const admin = (await hub.firstAdmin()).token;
  const ctx: Ctx = {
    t: hub,
    trusts,
    admin,
    alice: await hub.user(admin, "alice@uni.test", [{ role: Role.RESEARCHER }]),
    nora: (await hub.user(admin, "nora@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }])).token,
    sam: (await hub.user(admin, "sam@south.test", [{ role: Role.TRUST_ADMIN, trust: "south" }])).token,
    viewer: (await hub.user(admin, "vic@uni.test", [{ role: Role.VIEWER }])).token,
    studyId: "",
    refusedId: "",
    jobId: "",
  };
  // Discovery: north counts 120, south suppresses; another query north refuses by a rule.
  ctx.studyId = await queriedProject(ctx, "Ledger study", { north: { count: 120 }, south: "suppressed" });
  ctx.refusedId = await queriedProject(ctx, "Refused study", { north: "refused", south: { count: 30 } });
  // Governance: staged at north, approved by nora, frozen at north (which then asks north to import).
  await hub.client(ProjectService, ctx.alice.token).stageProject({ projectId: ctx.studyId, trusts: ["north"] });
  await hub.client(ProjectService, ctx.nora).decideProject({ projectId: ctx.studyId, trust: "north", decision: DecisionState.APPROVED, reason: "ethics approval 42" });
  const em = hub.hub.db.em();
  const [freeze] = await em.execute<{ freeze_task_id: string }[]>("select freeze_task_id from project_trust where project_id = ? and trust_id = ?", [ctx.studyId, trusts.north!]);
  await recordResult(em, trusts.north!, freeze!.freeze_task_id, {
    case: "output",
    value: create(TaskOutputSchema, { kind: { case: "freezeCohort", value: { personCount: 117n, studyCount: 3n, suppressed: false, querySha256: "x" } } }),
  });
  await eventually(
    async () => (await hub.client(ProjectService, ctx.alice.token).getProject({ projectId: ctx.studyId })).project!.decisions[0]!.freezeState,
    (s) => s === FreezeState.FROZEN,
    { timeoutMs: 15_000, what: "north's freeze recorded" },
  );
  // Training: alice starts a job; with no gateway linked its first round waits at north.
  const { model } = await hub.client(ModelService, ctx.alice.token).createModel({ projectId: ctx.studyId, name: "Risk model", image: "flip/train-numpy:1" });
  const { job } = await hub.client(JobService, ctx.alice.token).createJob({ modelId: model!.id, trusts: ["north"], rounds: 2, roundTimeoutSeconds: 600 });
  ctx.jobId = job!.id;
  await eventually(
    async () => (await em.execute<{ n: string }[]>("select count(*) as n from task where kind = 'training' and trust_id = ?", [trusts.north!]))[0]!.n,
    (n) => Number(n) === 1,
    { timeoutMs: 15_000, what: "the first round's task at north" },
  );
  // A diagnostic, newest of all.
  await hub.client(TaskService, admin).createEchoTask({ trust: "north", message: "ping" });
  t.context = ctx;
});

test.after.always(async (t) => {
  await t.context.t?.close();
});

const byKind = (entries: TrustActivity[], kind: TaskKind) => entries.filter((e) => e.kind === kind);

test.serial("a Trust Admin reads their trust's ledger, newest first, each entry naming the project, who asked, what came of it and the decision", async (t) => {
  const { entries, page } = await ledger(t.context, t.context.nora, "north");
  t.is(page!.nextPageToken, "");
  t.deepEqual(
    entries.map((e) => e.kind),
    [TaskKind.ECHO, TaskKind.TRAINING, TaskKind.IMAGING_IMPORT, TaskKind.FREEZE_COHORT, TaskKind.COHORT_QUERY, TaskKind.COHORT_QUERY],
    "every task the hub sent north, newest first",
  );
  const times = entries.map((e) => timestampMs(e.requestedAt!));
  t.deepEqual(times, [...times].sort((a, b) => b - a));

  const [refused, answered] = byKind(entries, TaskKind.COHORT_QUERY);
  t.is(answered!.projectName, "Ledger study");
  t.is(answered!.outcome, ActivityOutcome.DONE);
  t.is(answered!.requester?.email, "alice@uni.test");
  t.is(answered!.requestedBy, `user:${t.context.alice.id}`);
  t.truthy(answered!.endedAt);
  t.is(answered!.decision, undefined, "discovery runs before any decision");
  t.like(answered!.details, { case: "cohortQuery", value: { sql: SQL, recordCount: 120n, threshold: 10 } });

  t.is(refused!.projectName, "Refused study");
  t.is(refused!.outcome, ActivityOutcome.REFUSED);
  t.is(refused!.outcomeDetail, "invalid_query: select_only: only SELECT statements are allowed", "the rule the trust applied");
  t.like(refused!.details, { case: "cohortQuery", value: { recordCount: 0n } });

  const [freeze] = byKind(entries, TaskKind.FREEZE_COHORT);
  t.is(freeze!.outcome, ActivityOutcome.DONE);
  t.is(freeze!.requester?.email, "nora@north.test", "the approval asked for the freeze");
  t.like(freeze!.details, { case: "freezeCohort", value: { personCount: 117n, studyCount: 3n } });
  t.like(freeze!.decision, { state: DecisionState.APPROVED, decidedAs: DecisionMaker.SITE, reason: "ethics approval 42", trustCode: "north" });
  t.is(freeze!.decision!.decider?.email, "nora@north.test");

  const [imports] = byKind(entries, TaskKind.IMAGING_IMPORT);
  t.is(imports!.outcome, ActivityOutcome.IN_PROGRESS);
  t.is(imports!.endedAt, undefined);
  t.is(imports!.requestedBy, "system", "the hub asked by itself once the cohort froze");
  t.is(imports!.requester, undefined);
  t.is(imports!.decision?.state, DecisionState.APPROVED);
  t.is(imports!.details.case, "imagingImport");

  const [round] = byKind(entries, TaskKind.TRAINING);
  t.is(round!.projectName, "Ledger study");
  t.is(round!.requester?.email, "alice@uni.test", "the person who started the job");
  t.like(round!.details, { case: "training", value: { jobId: t.context.jobId, modelName: "Risk model", round: 1, stop: false } });
  t.is(round!.decision?.state, DecisionState.APPROVED);

  const [echo] = entries;
  t.is(echo!.projectId, "");
  t.is(echo!.decision, undefined);
  t.is(echo!.requester?.email, "admin@hub.test");
  t.is(echo!.details.case, undefined);
});

test.serial("the trust's inbox says when each project was staged there", async (t) => {
  const { items } = await t.context.t.client(ProjectService, t.context.nora).listTrustDecisions({ trust: "north" });
  const study = items.find((i) => i.project?.id === t.context.studyId)!;
  const [staged] = await t.context.t.hub.db.em().execute<{ at: string }[]>("select staged_at as at from project_trust where project_id = ? and trust_id = ?", [t.context.studyId, t.context.trusts.north!]);
  t.is(timestampMs(study.decision!.stagedAt!), new Date(staged!.at).getTime());
  t.true(timestampMs(study.decision!.stagedAt!) <= timestampMs(study.decision!.decidedAt!), "staged before it was decided");
});

test.serial("a trust's ledger shows only its own work: south sees its suppressed and answered queries, never north's", async (t) => {
  const { entries } = await ledger(t.context, t.context.sam, "south");
  t.deepEqual(
    entries.map((e) => [e.projectName, e.outcome]),
    [
      ["Refused study", ActivityOutcome.DONE],
      ["Ledger study", ActivityOutcome.SUPPRESSED],
    ],
  );
  t.like(entries[1]!.details, { case: "cohortQuery", value: { recordCount: 0n } }, "a suppressed count stays unknown");
});

test.serial("only the trust's Trust Admins and Admin may read its ledger; an unknown trust is NOT_FOUND", async (t) => {
  t.is(await codeOf(ledger(t.context, t.context.nora, "south")), Code.PermissionDenied, "a Trust Admin of another trust");
  t.is(await codeOf(ledger(t.context, t.context.sam, "north")), Code.PermissionDenied);
  t.is(await codeOf(ledger(t.context, t.context.alice.token, "north")), Code.PermissionDenied, "the researcher whose work it was");
  t.is(await codeOf(ledger(t.context, t.context.viewer, "north")), Code.PermissionDenied);
  t.is(await codeOf(t.context.t.client(TrustService).listTrustActivity({ trust: "north" })), Code.Unauthenticated);
  t.is(await codeOf(ledger(t.context, t.context.nora, "nowhere")), Code.NotFound);
  t.is((await ledger(t.context, t.context.admin, "north")).entries.length, 6, "Admin reads any trust's");
  t.is((await ledger(t.context, t.context.admin, t.context.trusts.south!)).entries.length, 2, "by id as well as code");
});

test.serial("the ledger filters by kind and pages through every entry once, in order", async (t) => {
  const queries = await ledger(t.context, t.context.nora, "north", { kinds: [TaskKind.COHORT_QUERY] });
  t.deepEqual(queries.entries.map((e) => e.projectName), ["Refused study", "Ledger study"]);
  const governance = await ledger(t.context, t.context.nora, "north", { kinds: [TaskKind.FREEZE_COHORT, TaskKind.TRAINING] });
  t.deepEqual(governance.entries.map((e) => e.kind), [TaskKind.TRAINING, TaskKind.FREEZE_COHORT]);
  t.is(await codeOf(ledger(t.context, t.context.nora, "north", { kinds: [TaskKind.UNSPECIFIED] })), Code.InvalidArgument);

  const all = (await ledger(t.context, t.context.nora, "north")).entries.map((e) => e.taskId);
  const walked: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const res = await ledger(t.context, t.context.nora, "north", { pageSize: 4, pageToken });
    walked.push(...res.entries.map((e) => e.taskId));
    pageToken = res.page!.nextPageToken;
    pages++;
  } while (pageToken);
  t.is(pages, 2);
  t.deepEqual(walked, all);
});

test.serial("flip trust ledger prints the same ledger for the Trust Admin, as a table or as pure JSON, filtered by kind", async (t) => {
  const flip = (argv: string[], token = t.context.nora) => runCliCaptured(argv, { FLIP_HUB_URL: t.context.t.hub.url, FLIP_TOKEN: token, FLIP_CONFIG_DIR: "/nonexistent" });
  const rpc = (await ledger(t.context, t.context.nora, "north")).entries;

  const json = await flip(["trust", "ledger", "north", "--json"]);
  t.is(json.code, 0, json.err);
  const printed = (JSON.parse(json.out) as { entries: { taskId: string; outcome: string }[] }).entries;
  t.deepEqual(printed.map((e) => e.taskId), rpc.map((e) => e.taskId), "every entry, newest first");

  const text = await flip(["trust", "ledger", "north", "--kind", "cohort-query,freeze-cohort"]);
  t.is(text.code, 0, text.err);
  const [header, ...rows] = text.out.trim().split("\n");
  t.regex(header!, /^REQUESTED\s+KIND\s+WORK\s+PROJECT\s+ASKED BY\s+OUTCOME\s+RESULT\s+DECISION$/);
  t.is(rows.length, 3);
  t.regex(rows[0]!, /freeze-cohort .*Ledger study .*nora@north\.test .*done .*117 persons, 3 studies .*approved by nora@north\.test/);
  t.regex(rows[1]!, /cohort-query .*Refused study .*alice@uni\.test .*refused .*invalid_query: select_only/);
  t.regex(rows[2]!, /cohort-query .*Ledger study .*alice@uni\.test .*done .*120 records +-$/, "discovery ran before any decision");

  const bad = await flip(["trust", "ledger", "north", "--kind", "cohort"]);
  t.is(bad.code, 2);
  t.regex(bad.err, /--kind: "cohort" is not a kind of work; use one or more of .*cohort-query/);
  const refused = await flip(["trust", "ledger", "north"], t.context.sam);
  t.not(refused.code, 0);
  t.regex(refused.err, /permission|trust admin/i, "another trust's Trust Admin is refused, saying why");
});

test.serial("a page of the ledger costs the same statements for 1 entry as for 6", async (t) => {
  // The hub's sweeps query now and then; the fewest of a few calls is the call's own cost.
  const cost = async (pageSize: number) => {
    let fewest = Infinity;
    let listed = 0;
    for (let i = 0; i < 3; i++) {
      const { result, queries } = await countQueries(() => ledger(t.context, t.context.nora, "north", { pageSize }));
      fewest = Math.min(fewest, queries);
      listed = result.entries.length;
    }
    return { queries: fewest, listed };
  };
  const one = await cost(1);
  const six = await cost(50);
  t.is(one.listed, 1);
  t.is(six.listed, 6);
  t.log(`statements per ListTrustActivity call: ${one.queries} for 1 entry, ${six.queries} for 6`);
  t.is(six.queries, one.queries, "the statement count does not grow with the page");
  t.true(one.queries <= 8, `a page costs ${one.queries} statements`);
});

test.serial("after a withdrawal, earlier work still shows the approval it ran under", async (t) => {
  await t.context.t.client(ProjectService, t.context.nora).withdrawApproval({ projectId: t.context.studyId, trust: "north", reason: "consent withdrawn" });
  const { entries } = await ledger(t.context, t.context.nora, "north");
  for (const kind of [TaskKind.FREEZE_COHORT, TaskKind.IMAGING_IMPORT, TaskKind.TRAINING]) {
    const [entry] = byKind(entries, kind);
    t.like(entry!.decision, { state: DecisionState.APPROVED, reason: "ethics approval 42" }, `${TaskKind[kind]} ran under the approval`);
  }
  const [imports] = byKind(entries, TaskKind.IMAGING_IMPORT);
  t.is(imports!.outcome, ActivityOutcome.CANCELLED, "the withdrawal stopped the import");
  t.is(imports!.outcomeDetail, "imaging: approval withdrawn", "the hub's reason, without who cancelled it");
  const project = (await t.context.t.client(ProjectService, t.context.nora).getProject({ projectId: t.context.studyId })).project!;
  t.is(project.decisions[0]!.state, DecisionState.WITHDRAWN, "while the project's decision is now withdrawn");
});

test.serial("an import declined by a gateway without an imaging service says so in the ledger, not just 'unsupported'", async (t) => {
  const em = t.context.t.hub.db.em();
  const spec = create(TaskSpecSchema, { kind: { case: "imagingImport", value: { projectId: t.context.refusedId, convertToNifti: false } } });
  const [task] = await createTasks(em, [{ trustId: t.context.trusts.south!, projectId: t.context.refusedId, spec }], { actor: "system" });
  await recordResult(em, t.context.trusts.south!, task!.id, {
    case: "error",
    value: create(TaskErrorSchema, { code: TaskErrorCode.UNSUPPORTED, message: "this gateway does not run imaging_import tasks", retryable: false }),
  });
  const entry = await eventually(
    async () => (await ledger(t.context, t.context.sam, "south", { kinds: [TaskKind.IMAGING_IMPORT] })).entries.find((e) => e.taskId === task!.id),
    (e) => e?.outcome === ActivityOutcome.FAILED,
    { timeoutMs: 15_000, what: "the declined import in south's ledger" },
  );
  t.is(entry!.outcomeDetail, "unsupported: this trust runs no imaging service");
});
