/**
 * Who may see and change tasks through TaskService: Admins everything, a Trust Admin their own
 * trust's tasks (read only), anyone else nothing. No gateway is needed: tasks stay pending.
 */
import anyTest, { type TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  hub: TestHub;
  tokens: { admin: string; trustAdmin: string; researcher: string };
  northTask: string;
  southTask: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const hub = await startTestHub();
  await hub.registerTrust("north");
  await hub.registerTrust("south");
  const admin = (await hub.firstAdmin()).token;
  const tokens = {
    admin,
    trustAdmin: (await hub.user(admin, "ta@north.test", [{ role: Role.TRUST_ADMIN, trust: "north" }])).token,
    researcher: (await hub.user(admin, "r@hub.test", [{ role: Role.RESEARCHER }])).token,
  };
  const tasks = hub.client(TaskService, admin);
  const northTask = (await tasks.createEchoTask({ trust: "north", message: "n" })).task!.id;
  const southTask = (await tasks.createEchoTask({ trust: "south", message: "s" })).task!.id;
  t.context = { hub, tokens, northTask, southTask };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

const codeOf = (p: Promise<unknown>) => p.then(() => Code[0], (e: unknown) => Code[ConnectError.from(e).code]);

test("an Admin lists and reads every trust's tasks", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.tokens.admin);
  const { tasks: all } = await tasks.listTasks({});
  t.deepEqual([...new Set(all.map((x) => x.trustCode))].sort(), ["north", "south"]);
  t.is((await tasks.getTask({ taskId: t.context.southTask })).task?.trustCode, "south");
});

test("a Trust Admin sees their own trust's tasks only; another trust's task reads as not found", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.tokens.trustAdmin);
  const { tasks: mine } = await tasks.listTasks({});
  t.deepEqual(mine.map((x) => x.trustCode), ["north"]);
  t.is((await tasks.getTask({ taskId: t.context.northTask })).task?.trustCode, "north");
  t.is(await codeOf(tasks.getTask({ taskId: t.context.southTask })), "NotFound");
  t.is(await codeOf(tasks.listTasks({ trust: "south" })), "PermissionDenied");
});

test("only an Admin creates or cancels tasks", async (t) => {
  for (const token of [t.context.tokens.trustAdmin, t.context.tokens.researcher]) {
    const tasks = t.context.hub.client(TaskService, token);
    t.is(await codeOf(tasks.createEchoTask({ trust: "north", message: "x" })), "PermissionDenied");
    t.is(await codeOf(tasks.cancelTask({ taskId: t.context.northTask })), "PermissionDenied");
  }
});

test("a researcher without a trust role cannot list tasks", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.tokens.researcher);
  t.is(await codeOf(tasks.listTasks({})), "PermissionDenied");
  t.is(await codeOf(tasks.getTask({ taskId: t.context.northTask })), "NotFound");
});

test("malformed requests are InvalidArgument naming the field", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.tokens.admin);
  const bad = async (p: Promise<unknown>, field: RegExp) => {
    const err = await p.then(() => undefined, (e: unknown) => ConnectError.from(e));
    t.is(err?.code, Code.InvalidArgument);
    t.regex(err?.rawMessage ?? "", field);
  };
  await bad(tasks.getTask({ taskId: "not-a-uuid" }), /^task_id:/);
  await bad(tasks.createEchoTask({ trust: "north", message: "x", maxAttempts: 50 }), /^max_attempts:/);
  await bad(tasks.createEchoTask({ trust: "north", message: "x".repeat(5000) }), /^message:/);
  await bad(tasks.listTasks({ states: [0] }), /^states\[0\]:/);
  t.is(await codeOf(tasks.createEchoTask({ trust: "nowhere", message: "x" })), "NotFound");
});
