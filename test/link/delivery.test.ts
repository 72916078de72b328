/**
 * The trust link end to end: a hub process and a gateway process over real HTTP/2, tasks created
 * through TaskService. Every scenario checks each task ended exactly once with the right outcome.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { LinkStatus } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { GpuSource } from "@flip/gen/flip/common/v1/common_pb.js";
import { TaskErrorCode } from "@flip/gen/flip/link/v1/link_pb.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { runCliCaptured } from "@flip/tools/cli/run-captured.js";
import { spawnService } from "../support/processes.js";
import {
  ADMIN_TOKEN,
  adminClients,
  attemptsOf,
  linked,
  startGatewayProc,
  startHubProc,
  TaskEndWatcher,
  waitForTask,
  type AdminClients,
  type GatewayProc,
  type HubProc,
  tempDir,
} from "../support/link.js";

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  gateway: GatewayProc;
  admin: AdminClients;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase("link_delivery");
  const hub = await startHubProc({ databaseUrl: db.url, telemetry: true });
  const admin = adminClients(hub.url);
  const { apiKey } = await admin.trusts.registerTrust({ name: "Guy's and St Thomas'", code: "gstt", region: "london" });
  const gateway = startGatewayProc({ hubUrl: hub.url, trustCode: "gstt", key: apiKey, telemetry: true, env: { FLIP_GATEWAY_CAPACITY: "echo=2" } });
  await linked(gateway);
  t.context = { db, hub, gateway, admin, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.gateway?.proc.stop();
  await t.context.hub?.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

test.serial("an echo task is pushed at once, completes on the trust, and is recorded once as succeeded", async (t) => {
  const { admin, ends, gateway, db } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "gstt", message: "hello trust" });
  t.is(task!.state, TaskState.PENDING);
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  // The hub has no polling interval to wait out: created to ended is one round trip (generous bound
  // for a loaded machine; BENCHMARKS.md has the real latency).
  t.true(timestampMs(done.endedAt!) - timestampMs(done.createdAt!) < 5_000, "pushed, not polled");
  const out = done.output?.kind;
  t.is(out?.case, "echo");
  t.deepEqual(out?.case === "echo" ? { message: out.value.message, trustCode: out.value.trustCode } : undefined, { message: "hello trust", trustCode: "gstt" });
  t.is(done.attempt, 1);
  t.is(done.progress, 1);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["succeeded"]);
  const local = gateway.taskLog().filter((e) => e.taskId === task!.id).map((e) => e.event);
  t.deepEqual(local, ["accepted", "started", "succeeded"], "the trust keeps its own record");
});

test.serial("the hub shows the trust online, with when it was last seen and its health", async (t) => {
  // Heartbeats in this file are 300 ms apart; a loaded machine may briefly miss one, so wait (bounded).
  await eventually(async () => (await t.context.admin.trusts.getTrust({ trust: "gstt" })).trust!.linkStatus === LinkStatus.ONLINE);
  const { trust } = await t.context.admin.trusts.getTrust({ trust: "gstt" });
  t.is(trust!.linkStatus, LinkStatus.ONLINE);
  t.true(Date.now() - Number(trust!.lastSeenAt!.seconds) * 1000 < 5_000);
  t.is(trust!.health?.gpuSource, GpuSource.NONE);
});

test.serial("progress of a running task is visible at the hub", async (t) => {
  const { task } = await t.context.admin.tasks.createEchoTask({ trust: "gstt", message: "slow", delay: durationFromMs(2_500) });
  const running = await waitForTask(t.context.admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING && x.progress > 0 && x.progress < 1);
  t.regex(running.progressMessage, /waited/);
  const done = await waitForTask(t.context.admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.deepEqual(await t.context.ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("a task that fails at the trust ends failed with the trust's error, without another attempt", async (t) => {
  const { task } = await t.context.admin.tasks.createEchoTask({ trust: "gstt", message: "x", fail: true, maxAttempts: 3 });
  const done = await waitForTask(t.context.admin.tasks, task!.id);
  t.is(done.state, TaskState.FAILED);
  t.is(done.error?.code, TaskErrorCode.INVALID);
  t.regex(done.error?.message ?? "", /asked to fail/);
  t.is(done.attempt, 1);
  t.deepEqual(await t.context.ends.endsOf(task!.id), ["failed"]);
});

test.serial("cancelling a running task ends it at the hub and stops it at the gateway", async (t) => {
  const { admin, gateway, ends } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "gstt", message: "long", delay: durationFromMs(60_000) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = gateway.proc.logs.length;
  const { task: cancelled } = await admin.tasks.cancelTask({ taskId: task!.id, reason: "no longer needed" });
  t.is(cancelled!.state, TaskState.CANCELLED);
  t.regex(cancelled!.endReason, /no longer needed/);
  await gateway.proc.waitForLog((r) => r.msg === "hub cancelled a task; stopping it" && r.taskId === task!.id, { since });
  await eventually(() => gateway.taskLog().some((e) => e.taskId === task!.id && e.event === "cancelled"));
  const again = await admin.tasks.cancelTask({ taskId: task!.id, reason: "twice" });
  t.is(again.task!.state, TaskState.CANCELLED, "cancelling is idempotent");
  t.regex(again.task!.endReason, /no longer needed/);
  t.deepEqual(await ends.endsOf(task!.id), ["cancelled"]);
});

test.serial("a task whose deadline passes expires with the reason recorded, and the gateway stops it", async (t) => {
  const { admin, gateway, ends } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "gstt", message: "late", delay: durationFromMs(30_000), timeout: durationFromMs(1_000) });
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.EXPIRED);
  t.regex(done.endReason, /deadline passed while the task was running/);
  t.is(done.error?.code, TaskErrorCode.TIMEOUT);
  await eventually(() => gateway.taskLog().some((e) => e.taskId === task!.id && (e.event === "cancelled" || e.event === "timed_out")));
  t.deepEqual(await ends.endsOf(task!.id), ["expired"]);
});

test.serial("the hub never runs more tasks of a kind than the gateway declared, and a slow task does not hold up the others", async (t) => {
  const { admin, gateway, ends } = t.context;
  const slow = (await admin.tasks.createEchoTask({ trust: "gstt", message: "slow", delay: durationFromMs(60_000) })).task!;
  const quick = [];
  for (let i = 0; i < 6; i++) quick.push((await admin.tasks.createEchoTask({ trust: "gstt", message: `quick ${i}`, delay: durationFromMs(300) })).task!);
  for (const q of quick) t.is((await waitForTask(admin.tasks, q.id)).state, TaskState.SUCCEEDED);
  t.is((await admin.tasks.getTask({ taskId: slow.id })).task!.state, TaskState.RUNNING, "the quick tasks finished while the slow one still ran");
  await admin.tasks.cancelTask({ taskId: slow.id, reason: "long enough" });
  await eventually(() => gateway.taskLog().some((e) => e.taskId === slow.id && e.event === "cancelled"));
  // Replay the trust's own log: at no moment were more than 2 echo tasks running.
  const ids = new Set([slow.id, ...quick.map((q) => q.id)]);
  let running = 0;
  let peak = 0;
  for (const e of gateway.taskLog().filter((x) => ids.has(x.taskId))) {
    if (e.event === "started") peak = Math.max(peak, ++running);
    if (e.event === "succeeded" || e.event === "cancelled") running--;
  }
  t.is(peak, 2);
  t.is(running, 0);
  for (const q of quick) t.deepEqual(await ends.endsOf(q.id), ["succeeded"]);
  t.deepEqual(await ends.endsOf(slow.id), ["cancelled"]);
});

test.serial("a task's trace starts at the RPC that created it and continues in the gateway", async (t) => {
  const { admin, gateway } = t.context;
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const { task } = await admin.tasks.createEchoTask({ trust: "gstt", message: "traced" }, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  await waitForTask(admin.tasks, task!.id);
  const entries = gateway.taskLog().filter((e) => e.taskId === task!.id);
  t.true(entries.length > 0);
  for (const e of entries) t.is(e.traceId, traceId);
});

test.serial("ListTasks shows the trust's tasks newest first, filtered by state", async (t) => {
  const { tasks } = await t.context.admin.tasks.listTasks({ trust: "gstt", page: { pageSize: 500 } });
  t.true(tasks.length >= 10);
  const created = tasks.map((x) => Number(x.createdAt!.seconds) * 1e9 + x.createdAt!.nanos);
  t.deepEqual(created, [...created].sort((a, b) => b - a));
  t.true(tasks.every((x) => x.trustCode === "gstt"));
  const cancelled = await t.context.admin.tasks.listTasks({ trust: "gstt", states: [TaskState.CANCELLED] });
  t.is(cancelled.tasks.length, 2, "the long task and the slow one, both cancelled above");
  t.true(cancelled.tasks.every((x) => x.state === TaskState.CANCELLED));
});

test.serial("while the hub is in deployment mode, new echo tasks are refused with FailedPrecondition", async (t) => {
  const admin = createClient(AdminService, createGrpcTransport({ baseUrl: t.context.hub.url }));
  const auth = { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } };
  await admin.setDeploymentMode({ enabled: true }, auth);
  try {
    const err = await t.context.admin.tasks.createEchoTask({ trust: "gstt", message: "paused" }).catch((e: unknown) => ConnectError.from(e));
    t.true(err instanceof ConnectError);
    t.is((err as ConnectError).code, Code.FailedPrecondition);
    t.regex((err as ConnectError).rawMessage, /deployment mode/);
  } finally {
    await admin.setDeploymentMode({ enabled: false }, auth);
  }
});

/** Runs the flip CLI in this process; returns its exit code and output. */
function flip(hubUrl: string, ...argv: string[]) {
  return runCliCaptured([...argv, "--hub", hubUrl, "--token", ADMIN_TOKEN]);
}

test.serial("flip gateway links a trust, and a task created with flip task echo completes there and shows as succeeded", async (t) => {
  const { hub, admin } = t.context;
  const { apiKey } = await admin.trusts.registerTrust({ name: "King's College Hospital", code: "kch" });
  const gateway = spawnService({
    name: "flip gateway",
    entry: "tools/src/cli/main.ts",
    args: ["gateway", "--hub", hub.url, "--trust", "kch", "--key", apiKey, "--state-dir", tempDir("flip-cli-gw-"), "--gpus", "none"],
    env: { OTEL_SDK_DISABLED: "true" },
  });
  t.teardown(() => gateway.stop().then(() => undefined));
  await gateway.waitForLog("linked to the hub");
  const echo = await flip(hub.url, "task", "echo", "--trust", "kch", "--message", "from the cli", "--wait");
  t.is(echo.code, 0, echo.err);
  t.regex(echo.out, /state: succeeded/);
  t.regex(echo.out, /echo "from the cli" from kch/);
  const id = /task ([0-9a-f-]{36})/.exec(echo.out)![1]!;
  const list = await flip(hub.url, "task", "list", "--trust", "kch");
  t.regex(list.out, new RegExp(`${id}\\s+kch\\s+echo\\s+succeeded`));
  const json = JSON.parse((await flip(hub.url, "task", "get", id, "--json")).out) as { task: { state: string } };
  t.is(json.task.state, "TASK_STATE_SUCCEEDED");
});
