/**
 * Creating echo tasks for many trusts at once through TaskService/CreateEchoTasks and `flip task echo`,
 * against a real hub. No gateway is needed: the tasks stay pending.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { TaskService, TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { runCliCaptured } from "@flip/tools/cli/run-captured.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  hub: TestHub;
  admin: string;
  researcher: string;
  trusts: Record<string, string>;
}
const test = anyTest as TestFn<Ctx>;

const CODES = ["leeds", "york", "hull", "bath", "kent", "closed"];

test.before(async (t) => {
  const hub = await startTestHub();
  const trusts: Record<string, string> = {};
  for (const code of CODES) trusts[code] = (await hub.registerTrust(code)).id;
  const admin = (await hub.firstAdmin()).token;
  await hub.client(TrustService, admin).disableTrust({ trust: "closed" });
  const researcher = (await hub.user(admin, "r@hub.test", [{ role: Role.RESEARCHER }])).token;
  t.context = { hub, admin, researcher, trusts };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  return { code: err ? Code[err.code] : "OK", message: err?.rawMessage ?? "" };
}

async function taskCount(ctx: Ctx): Promise<number> {
  return (await ctx.hub.client(TaskService, ctx.admin).listTasks({ page: { pageSize: 500 } })).tasks.length;
}

test.serial("an Admin creates echo tasks for several trusts in one call, recorded as one audit entry that can be read at once", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.admin);
  const refs = ["leeds", "york", t.context.trusts.hull!];
  const { tasks: created } = await tasks.createEchoTasks({ trusts: refs, message: "roll call", maxAttempts: 2, timeout: durationFromMs(60_000) });
  t.deepEqual(created.map((x) => x.trustCode), ["leeds", "york", "hull"]);
  t.true(created.every((x) => x.state === TaskState.PENDING && x.maxAttempts === 2));
  t.true(created.every((x) => x.spec?.kind.case === "echo" && x.spec.kind.value.message === "roll call"));
  t.is((await tasks.getTask({ taskId: created[1]!.id })).task?.trustCode, "york");

  const audit = t.context.hub.client(AuditService, t.context.admin);
  const { entries } = await audit.listAuditEntries({ actionPrefix: "task.batch_created" });
  t.is(entries.length, 1, "one entry for the batch, listed as soon as the call returned");
  t.true(entries[0]!.seq > 0n && entries[0]!.hash.length === 64, "and already chained");
  const after = JSON.parse(entries[0]!.afterJson) as { count: number; tasks: { id: string; trustCode: string }[] };
  t.is(after.count, 3);
  t.deepEqual(after.tasks.map((x) => [x.id, x.trustCode]), created.map((x) => [x.id, x.trustCode]));
  const verified = await audit.verifyAuditChain({});
  t.true(verified.ok, verified.problem);
});

test.serial("a missing or disabled trust fails the whole call, names the trust, and creates nothing", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.admin);
  const before = await taskCount(t.context);
  t.deepEqual(await refusal(tasks.createEchoTasks({ trusts: ["leeds", "nowhere"], message: "x" })), { code: "NotFound", message: 'trust "nowhere" not found' });
  t.deepEqual(await refusal(tasks.createEchoTasks({ trusts: ["leeds", "closed"], message: "x" })), {
    code: "FailedPrecondition",
    message: 'trust "closed" is disabled; enable it before sending it tasks',
  });
  t.is(await taskCount(t.context), before);
});

test("malformed requests are InvalidArgument naming the field", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.admin);
  const bad = async (p: Promise<unknown>, field: RegExp) => {
    const got = await refusal(p);
    t.is(got.code, "InvalidArgument", got.message);
    t.regex(got.message, field);
  };
  await bad(tasks.createEchoTasks({ trusts: [], message: "x" }), /^trusts:/);
  await bad(tasks.createEchoTasks({ trusts: ["leeds", ""], message: "x" }), /^trusts\[1\]:/);
  await bad(tasks.createEchoTasks({ trusts: ["leeds", "york", t.context.trusts.leeds!], message: "x" }), /^trusts\[2\]: names trust "leeds" again/);
  await bad(tasks.createEchoTasks({ trusts: Array.from({ length: 10_001 }, (_, i) => `t${i}`), message: "x" }), /^trusts: at most 10000/);
  await bad(tasks.createEchoTasks({ trusts: ["leeds", "york"], message: "x", maxAttempts: 50 }), /^max_attempts:/);
  await bad(tasks.createEchoTasks({ trusts: ["leeds", "york"], message: "x", timeout: durationFromMs(10) }), /^timeout:/);
  await bad(tasks.createEchoTasks({ trusts: ["leeds", "york"], message: "x".repeat(5000) }), /^message:/);
});

test("only an Admin creates tasks for many trusts", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.researcher);
  t.is((await refusal(tasks.createEchoTasks({ trusts: ["leeds", "york"], message: "x" }))).code, "PermissionDenied");
});

test.serial("flip task echo with --trust given more than once creates the tasks together; --json prints only JSON", async (t) => {
  const run = await runCliCaptured(["task", "echo", "--trust", "bath", "--trust", "kent", "--message", "from the cli", "--json", "--hub", t.context.hub.hub.url, "--token", t.context.admin]);
  t.is(run.code, 0, run.err);
  const out = JSON.parse(run.out) as { tasks: { trustCode: string; state: string }[] };
  t.deepEqual(out.tasks.map((x) => [x.trustCode, x.state]), [
    ["bath", "TASK_STATE_PENDING"],
    ["kent", "TASK_STATE_PENDING"],
  ]);
  const human = await runCliCaptured(["task", "echo", "--trust", "bath", "--trust", "kent", "--hub", t.context.hub.hub.url, "--token", t.context.admin]);
  t.is(human.code, 0, human.err);
  t.regex(human.out, /^created 2 tasks\n/);
  t.regex(human.out, /\n[0-9a-f-]{36}\s+kent\s+pending/);
});

test.serial("flip task echo --wait for several trusts waits until every task ended and fails unless all succeeded", async (t) => {
  // No gateway is linked, so both tasks expire at their one-second deadline.
  const run = await runCliCaptured(["task", "echo", "--trust", "bath", "--trust", "kent", "--timeout", "1s", "--wait", "--json", "--hub", t.context.hub.hub.url, "--token", t.context.admin]);
  t.is(run.code, 1, run.err);
  const out = JSON.parse(run.out) as { tasks: { trustCode: string; state: string }[] };
  t.deepEqual(out.tasks.map((x) => [x.trustCode, x.state]), [
    ["bath", "TASK_STATE_EXPIRED"],
    ["kent", "TASK_STATE_EXPIRED"],
  ]);
});
