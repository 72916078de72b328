import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionState, ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ImagingService } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, TaskOutputSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { recordResult } from "@flip/hub/tasks/task-outcomes.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

/**
 * Each role × each governance RPC × own/other project. "allowed" means the call passed authorisation
 * (it may still fail for a domain reason such as a wrong state); "hidden" means NotFound, which is what
 * a caller who may not see a project gets, so its existence does not leak.
 */
type Outcome = "allowed" | "unauthenticated" | "denied" | "hidden";
type Who = "anonymous" | "viewer" | "owner" | "other" | "trustAdmin" | "admin";
const WHO: Who[] = ["anonymous", "viewer", "owner", "other", "trustAdmin", "admin"];

interface Ctx {
  t: TestHub;
  tokens: Record<Who, string | undefined>;
  trustId: string;
  /** A fresh project of the owner, staged at trust "north", with an answered query. */
  stagedProject(): Promise<{ projectId: string; queryId: string }>;
}
const test = anyTest as TestFn<Ctx>;

function classify(e: unknown): Outcome {
  if (e === undefined) return "allowed";
  // Only the hub's answers are classified; a fixture that broke fails the test with its own message.
  if (!(e instanceof ConnectError)) throw e;
  const code = ConnectError.from(e).code;
  if (code === Code.Unauthenticated) return "unauthenticated";
  if (code === Code.PermissionDenied) return "denied";
  if (code === Code.NotFound) return "hidden";
  return "allowed";
}

test.before(async (t) => {
  const hub = await startTestHub();
  const north = await hub.registerTrust("north");
  const admin = (await hub.firstAdmin()).token;
  const tokens: Record<Who, string | undefined> = {
    anonymous: undefined,
    admin,
    viewer: (await hub.user(admin, "viewer@x.test", [{ role: Role.VIEWER }])).token,
    owner: (await hub.user(admin, "owner@x.test", [{ role: Role.RESEARCHER }])).token,
    other: (await hub.user(admin, "other@x.test", [{ role: Role.RESEARCHER }])).token,
    trustAdmin: (await hub.user(admin, "ta@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }])).token,
  };
  let n = 0;
  t.context = {
    t: hub,
    tokens,
    trustId: north.id,
    async stagedProject() {
      const { project } = await hub.client(ProjectService, tokens.owner).createProject({ name: `matrix ${++n}` });
      const { query } = await hub.client(CohortService, tokens.owner).submitCohortQuery({ projectId: project!.id, sql: "select person_id from omop.person" });
      const em = hub.hub.db.em();
      const [row] = await em.execute<{ task_id: string }[]>("select task_id from cohort_answer where query_id = ?", [query!.id]);
      await recordResult(em, north.id, row!.task_id, {
        case: "output",
        value: create(TaskOutputSchema, { kind: { case: "cohortQuery", value: { outcome: CohortOutcome.OK, recordCount: 50n, threshold: 10 } } }),
      });
      // The cohort module records the answer when it hears the task end (asynchronously, via NOTIFY).
      await eventually(
        async () => (await em.execute<{ state: string }[]>("select state from cohort_answer where query_id = ?", [query!.id]))[0]?.state,
        (state) => state === "ok",
        { timeoutMs: 15_000, what: "fixture: the cohort answer recorded as ok" },
      );
      await hub.client(ProjectService, tokens.owner).stageProject({ projectId: project!.id, trusts: ["north"] });
      return { projectId: project!.id, queryId: query!.id };
    },
  };
});

test.after.always(async (t) => {
  await t.context.t?.close();
});

interface Row {
  rpc: string;
  call(ctx: Ctx, token: string | undefined): Promise<unknown>;
  expect: Record<Who, Outcome>;
}

const rows: Row[] = [
  {
    rpc: "ProjectService/GetProject",
    call: async (c, tok) => c.t.client(ProjectService, tok).getProject({ projectId: (await c.stagedProject()).projectId }),
    expect: { anonymous: "unauthenticated", viewer: "allowed", owner: "allowed", other: "hidden", trustAdmin: "allowed", admin: "allowed" },
  },
  {
    rpc: "ProjectService/CreateProject",
    call: (c, tok) => c.t.client(ProjectService, tok).createProject({ name: `created ${Math.random()}` }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "allowed", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/UpdateProject",
    call: async (c, tok) => c.t.client(ProjectService, tok).updateProject({ projectId: (await c.stagedProject()).projectId, description: "x" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/UnstageProject",
    call: async (c, tok) => c.t.client(ProjectService, tok).unstageProject({ projectId: (await c.stagedProject()).projectId }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/DecideProject",
    call: async (c, tok) => c.t.client(ProjectService, tok).decideProject({ projectId: (await c.stagedProject()).projectId, trust: "north", decision: DecisionState.DECLINED }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "hidden", trustAdmin: "allowed", admin: "denied" },
  },
  {
    // North's decision is still pending: whoever passes authorisation is refused for that reason.
    rpc: "ProjectService/WithdrawApproval",
    call: async (c, tok) => c.t.client(ProjectService, tok).withdrawApproval({ projectId: (await c.stagedProject()).projectId, trust: "north", reason: "consent withdrawn" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "hidden", trustAdmin: "allowed", admin: "denied" },
  },
  {
    rpc: "ImagingService/GetImagingStatus",
    call: async (c, tok) => c.t.client(ImagingService, tok).getImagingStatus({ projectId: (await c.stagedProject()).projectId }),
    expect: { anonymous: "unauthenticated", viewer: "allowed", owner: "allowed", other: "hidden", trustAdmin: "allowed", admin: "allowed" },
  },
  {
    rpc: "ImagingService/ImportImaging",
    call: async (c, tok) => c.t.client(ImagingService, tok).importImaging({ projectId: (await c.stagedProject()).projectId, convertToNifti: true }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/DeleteProject",
    call: async (c, tok) => c.t.client(ProjectService, tok).deleteProject({ projectId: (await c.stagedProject()).projectId }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/AddProjectMember",
    call: async (c, tok) => c.t.client(ProjectService, tok).addProjectMember({ projectId: (await c.stagedProject()).projectId, user: "viewer@x.test" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "ProjectService/ListTrustDecisions",
    call: (c, tok) => c.t.client(ProjectService, tok).listTrustDecisions({ trust: "north" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "allowed", admin: "allowed" },
  },
  {
    rpc: "CohortService/GetCohortQuery",
    call: async (c, tok) => c.t.client(CohortService, tok).getCohortQuery({ queryId: (await c.stagedProject()).queryId }),
    expect: { anonymous: "unauthenticated", viewer: "allowed", owner: "allowed", other: "hidden", trustAdmin: "allowed", admin: "allowed" },
  },
  {
    rpc: "CohortService/SubmitCohortQuery",
    call: async (c, tok) => c.t.client(CohortService, tok).submitCohortQuery({ projectId: (await c.stagedProject()).projectId, sql: "select 1" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "allowed", other: "hidden", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "AuditService/VerifyAuditChain",
    call: (c, tok) => c.t.client(AuditService, tok).verifyAuditChain({}),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "AdminService/SetDeploymentMode",
    call: (c, tok) => c.t.client(AdminService, tok).setDeploymentMode({ enabled: false }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "denied", admin: "allowed" },
  },
  {
    // Without revoke_previous, so the tokens the other cases use keep working.
    rpc: "AdminService/RotateSigningKey",
    call: (c, tok) => c.t.client(AdminService, tok).rotateSigningKey({}),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "TrustService/RegisterTrust",
    call: (c, tok) => c.t.client(TrustService, tok).registerTrust({ name: "", code: "" }),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "denied", admin: "allowed" },
  },
  {
    rpc: "TrustService/ListTrusts",
    call: (c, tok) => c.t.client(TrustService, tok).listTrusts({}),
    expect: { anonymous: "unauthenticated", viewer: "allowed", owner: "allowed", other: "allowed", trustAdmin: "allowed", admin: "allowed" },
  },
  {
    rpc: "UserService/ListUsers",
    call: (c, tok) => c.t.client(UserService, tok).listUsers({}),
    expect: { anonymous: "unauthenticated", viewer: "denied", owner: "denied", other: "denied", trustAdmin: "denied", admin: "allowed" },
  },
];

for (const row of rows) {
  test.serial(`${row.rpc} is allowed or refused per role as the policy says`, async (t) => {
    const got: Partial<Record<Who, Outcome>> = {};
    for (const who of WHO) {
      try {
        await row.call(t.context, t.context.tokens[who]);
        got[who] = "allowed";
      } catch (e) {
        got[who] = classify(e);
      }
    }
    t.deepEqual(got, row.expect);
  });
}
