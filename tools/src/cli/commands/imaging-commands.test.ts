/**
 * `flip imaging …` and `flip project withdraw` against an in-process fake of ImagingService and
 * ProjectService: what the CLI sends, what it prints (and that --json prints nothing else), its exit
 * codes. The hub's side is tested end to end in test/imaging/.
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { ImagingService, ImagingState, TrustImagingStatusSchema, type ImportImagingRequest } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { DecisionState, FreezeState, ProjectSchema, ProjectService, ProjectStatus, type WithdrawApprovalRequest } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ImagingService as TrustImagingService, ImportState } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { runCliCaptured } from "../run-captured.js";
import { serveFakeHub } from "../testing/fake-hub.js";

const test = anyTest as TestFn<{ dir: string }>;

test.beforeEach((t) => {
  t.context.dir = mkdtempSync(path.join(os.tmpdir(), "flip-cli-imaging-"));
});
test.afterEach.always((t) => rmSync(t.context.dir, { recursive: true, force: true }));

const PROJECT_ID = "33333333-3333-4333-8333-333333333333";
const NORTH = "00000000-0000-4000-8000-00000000000a";
const SOUTH = "00000000-0000-4000-8000-00000000000b";

interface FakeServices {
  imaging?: Partial<ServiceImpl<typeof ImagingService>>;
  projects?: Partial<ServiceImpl<typeof ProjectService>>;
}

/** The fakes on a hub of their own; returns the env that points `flip` at it. */
async function fakeHub(t: ExecutionContext<{ dir: string }>, services: FakeServices): Promise<NodeJS.ProcessEnv> {
  return await serveFakeHub(t, (router: ConnectRouter) => {
    if (services.imaging) router.service(ImagingService, services.imaging);
    if (services.projects) router.service(ProjectService, services.projects);
  });
}

const status = (init: MessageInitShape<typeof TrustImagingStatusSchema>) =>
  create(TrustImagingStatusSchema, { updatedAt: timestampFromDate(new Date("2026-05-01T10:00:00Z")), ...init });

type StatusInit = MessageInitShape<typeof TrustImagingStatusSchema>;

const north = (init: StatusInit = {}) =>
  status({
    trustId: NORTH,
    trustCode: "north",
    state: ImagingState.DONE,
    taskId: "44444444-4444-4444-8444-444444444444",
    counts: {
      studiesRequested: 100n,
      studiesImported: 95n,
      studiesFailed: 3n,
      studiesNotFound: 1n,
      studiesAmbiguous: 1n,
      imagesStored: 12_000n,
      reasons: [
        { reason: "PACS unreachable after 5 attempts", count: 3n },
        { reason: "no study has the accession number", count: 1n },
      ],
    },
    ...init,
  } as StatusInit);

const south = (init: MessageInitShape<typeof TrustImagingStatusSchema> = {}) => status({ trustId: SOUTH, trustCode: "south", state: ImagingState.NOT_REQUESTED, ...init });

const project = (decisions: MessageInitShape<typeof ProjectSchema>["decisions"] = []) =>
  create(ProjectSchema, { id: PROJECT_ID, name: "Imaging study", ownerId: "alice", status: ProjectStatus.APPROVED, decisions });

test("imaging status shows a row per trust and groups the reasons under it; --json prints only JSON", async (t) => {
  const env = await fakeHub(t, {
    imaging: {
      getImagingStatus: (req) => {
        t.is(req.projectId, PROJECT_ID);
        return { trusts: [north(), south({ state: ImagingState.FAILED, error: 'unsupported: trust "south" runs no imaging service' })] };
      },
    },
  });
  const human = await runCliCaptured(["imaging", "status", "--project", PROJECT_ID], env);
  t.is(human.code, 0, human.err);
  const lines = human.out.split("\n");
  t.regex(lines[0]!, /^TRUST\s+STATE\s+IMPORTED\s+FAILED\s+NOT FOUND\s+AMBIGUOUS\s+QUEUED\/IMPORTING\s+NIFTI SERIES\s+UPDATED$/);
  t.regex(lines[1]!, /^north\s+done\s+95\/100\s+3\s+1\s+1\s+0\/0\s+-\s+2026-05-01T10:00:00Z$/);
  t.regex(lines[2]!, /^south\s+failed\s+-\s+-\s+-\s+-\s+-\s+-\s+2026-05-01T10:00:00Z$/, "no counts: the trust never reported any");
  t.true(human.out.includes("north:\n  3 × PACS unreachable after 5 attempts\n  1 × no study has the accession number\n"));
  t.true(human.out.includes('south:\n  error: unsupported: trust "south" runs no imaging service\n'));

  const json = await runCliCaptured(["imaging", "status", "--project", PROJECT_ID, "--json"], env);
  t.is(json.code, 0);
  const parsed = JSON.parse(json.out) as { projectId: string; trusts: { trustCode: string; state: string; counts?: { studiesImported: string } }[] };
  t.is(parsed.projectId, PROJECT_ID);
  t.deepEqual(
    parsed.trusts.map((s) => [s.trustCode, s.state]),
    [
      ["north", "IMAGING_STATE_DONE"],
      ["south", "IMAGING_STATE_FAILED"],
    ],
  );
  t.is(parsed.trusts[0]!.counts?.studiesImported, "95");
});

test("imaging status says so when the import waits for the trust's import window, and shows NIfTI series when asked for", async (t) => {
  const env = await fakeHub(t, {
    imaging: {
      getImagingStatus: () => ({
        trusts: [north({ state: ImagingState.IMPORTING, convertToNifti: true, counts: { studiesRequested: 10n, studiesImported: 4n, studiesQueued: 6n, niftiSeries: 7n, waitingForWindow: true } })],
      }),
    },
  });
  const run = await runCliCaptured(["imaging", "status", "--project", PROJECT_ID], env);
  t.regex(run.out.split("\n")[1]!, /^north\s+importing \(waiting for the import window\)\s+4\/10\s+0\s+0\s+0\s+6\/0\s+7\s/);
});

test("imaging import sends the trusts and the NIfTI choice, and prints where each trust stands", async (t) => {
  const requests: ImportImagingRequest[] = [];
  const env = await fakeHub(t, {
    imaging: {
      importImaging: (req) => {
        requests.push(req);
        return { trusts: [north({ state: ImagingState.IMPORTING, convertToNifti: req.convertToNifti })] };
      },
    },
  });
  const run = await runCliCaptured(["imaging", "import", "--project", PROJECT_ID, "--trust", "north", "--trust", SOUTH, "--nifti"], env);
  t.is(run.code, 0, run.err);
  t.like(requests[0], { projectId: PROJECT_ID, trusts: ["north", SOUTH], convertToNifti: true });
  t.regex(run.out, /^north\s+importing\s+95\/100/m);
  t.regex(run.out, /follow it: flip imaging status --project 33333333-3333-4333-8333-333333333333 --watch/);

  const every = await runCliCaptured(["imaging", "import", "--project", PROJECT_ID, "--json"], env);
  t.is(every.code, 0);
  t.like(requests[1], { trusts: [], convertToNifti: false });
  t.is((JSON.parse(every.out) as { trusts: unknown[] }).trusts.length, 1);
});

test("imaging commands report the hub's refusal and exit 1, and a missing --project exits 2", async (t) => {
  const env = await fakeHub(t, {
    imaging: {
      importImaging: () => {
        throw new ConnectError('trust "south" has not approved this project (its decision: pending)', Code.FailedPrecondition);
      },
    },
  });
  const refused = await runCliCaptured(["imaging", "import", "--project", PROJECT_ID, "--trust", "south"], env);
  t.is(refused.code, 1);
  t.is(refused.err, 'error: trust "south" has not approved this project (its decision: pending) [FailedPrecondition]\n');
  const usage = await runCliCaptured(["imaging", "status"], env);
  t.is(usage.code, 2);
  t.regex(usage.err, /^--project is required\nusage: flip imaging status --project <id>/);
});

test("imaging status --watch prints each change until the imports end: exit 0 when all are done", async (t) => {
  let calls = 0;
  const env = await fakeHub(t, {
    imaging: {
      getImagingStatus: () => {
        calls++;
        if (calls === 1) return { trusts: [north({ state: ImagingState.IMPORTING, counts: { studiesRequested: 100n, studiesImported: 10n, studiesQueued: 90n } })] };
        return { trusts: [north()] };
      },
    },
    projects: { getProject: () => ({ project: project([{ trustId: NORTH, trustCode: "north", state: DecisionState.APPROVED, freezeState: FreezeState.FROZEN }]) }) },
  });
  const run = await runCliCaptured(["imaging", "status", "--project", PROJECT_ID, "--watch", "--interval", "1s"], env);
  t.is(run.code, 0, run.err);
  t.is(calls, 2);
  t.regex(run.out, /^north\s+importing\s+10\/100/m);
  t.regex(run.out, /^north\s+done\s+95\/100/m);
});

test("imaging status --watch waits for a trust still freezing its cohort, prints JSON lines with --json, and exits 1 when an import failed", async (t) => {
  let calls = 0;
  const env = await fakeHub(t, {
    imaging: {
      getImagingStatus: () => {
        calls++;
        return { trusts: [north(), south(calls === 1 ? {} : { state: ImagingState.FAILED, error: "timeout: deadline passed while the task was pending" })] };
      },
    },
    projects: {
      getProject: () => ({
        project: project([
          { trustId: NORTH, trustCode: "north", state: DecisionState.APPROVED, freezeState: FreezeState.FROZEN },
          { trustId: SOUTH, trustCode: "south", state: DecisionState.APPROVED, freezeState: calls === 1 ? FreezeState.PENDING : FreezeState.FROZEN },
        ]),
      }),
    },
  });
  const run = await runCliCaptured(["imaging", "status", "--project", PROJECT_ID, "--watch", "--interval", "1s", "--json"], env);
  t.is(run.code, 1, run.err);
  const lines = run.out.trim().split("\n").map((l) => JSON.parse(l) as { trusts: { trustCode: string; state: string }[] });
  t.deepEqual(
    lines.map((l) => l.trusts.find((s) => s.trustCode === "south")!.state),
    ["IMAGING_STATE_NOT_REQUESTED", "IMAGING_STATE_FAILED"],
  );
});

test("project withdraw sends the trust and the reason; the reason is required", async (t) => {
  const requests: WithdrawApprovalRequest[] = [];
  const env = await fakeHub(t, {
    projects: {
      withdrawApproval: (req) => {
        requests.push(req);
        return { project: project([{ trustId: NORTH, trustCode: "north", state: DecisionState.WITHDRAWN, decidedBy: "nora", freezeState: FreezeState.FROZEN, frozenPersonCount: 120n }]) };
      },
    },
  });
  const run = await runCliCaptured(["project", "withdraw", "--project", PROJECT_ID, "--trust", "north", "--reason", "consent withdrawn"], env);
  t.is(run.code, 0, run.err);
  t.like(requests[0], { projectId: PROJECT_ID, trust: "north", reason: "consent withdrawn" });
  t.regex(run.out, /^north\s+withdrawn\s+nora\s/m);

  const positional = await runCliCaptured(["project", "withdraw", PROJECT_ID, "--trust", "north", "--reason", "again", "--json"], env);
  t.is(positional.code, 0);
  t.is((JSON.parse(positional.out) as { project: { decisions: { state: string }[] } }).project.decisions[0]!.state, "DECISION_STATE_WITHDRAWN");

  const noReason = await runCliCaptured(["project", "withdraw", PROJECT_ID, "--trust", "north"], env);
  t.is(noReason.code, 2);
  t.regex(noReason.err, /^--reason is required\n/);
  const twice = await runCliCaptured(["project", "withdraw", PROJECT_ID, "--project", PROJECT_ID, "--trust", "north", "--reason", "x"], env);
  t.is(twice.code, 2);
  t.is(requests.length, 2, "nothing sent for a usage error");
});

test("imaging accessions asks the trust's own imaging service with the internal key, and filters by state", async (t) => {
  let key = "";
  const env = await serveFakeHub(t, (router) =>
    router.service(TrustImagingService, {
      getImportStatus(req, ctx) {
        key = ctx.requestHeader.get("authorization") ?? "";
        t.is(req.projectId, PROJECT_ID);
        return {
          convertToNifti: false,
          accessions: [
            { accessionNumber: "ACC001", state: ImportState.IMPORTED, attempts: 1, instances: 32, updatedAt: timestampFromDate(new Date("2026-05-01T10:00:00Z")) },
            { accessionNumber: "ACC002", state: ImportState.NOT_FOUND, attempts: 1, reason: "no study in the PACS has this accession number" },
          ],
        };
      },
    }),
  );
  const imaging = { ...env, FLIP_IMAGING_URL: env.FLIP_HUB_URL, FLIP_TRUST_INTERNAL_KEY: "trust-internal-key-0123456789" };
  const all = await runCliCaptured(["imaging", "accessions", "--project", PROJECT_ID], imaging);
  t.is(all.code, 0, all.err);
  t.is(key, "Bearer trust-internal-key-0123456789");
  t.regex(all.out, /^ACCESSION\s+STATE\s+ATTEMPTS\s+IMAGES\s+UPDATED\s+REASON$/m);
  t.regex(all.out, /^ACC001\s+imported\s+1\s+32\s+2026-05-01T10:00:00.000Z\s+-$/m);
  t.regex(all.out, /^ACC002\s+not-found\s+1\s+0\s+-\s+no study in the PACS has this accession number$/m);
  const missing = await runCliCaptured(["imaging", "accessions", "--project", PROJECT_ID, "--state", "not-found", "--json"], imaging);
  t.deepEqual((JSON.parse(missing.out) as { accessions: { accessionNumber: string }[] }).accessions.map((a) => a.accessionNumber), ["ACC002"]);
  const noKey = await runCliCaptured(["imaging", "accessions", "--project", PROJECT_ID], { ...imaging, FLIP_TRUST_INTERNAL_KEY: "" });
  t.not(noKey.code, 0);
  t.regex(noKey.err, /FLIP_TRUST_INTERNAL_KEY/);
});
