/**
 * Restarts: the gateway or the hub dies mid-task (SIGKILL) or stops cleanly (SIGTERM), and comes
 * back. Every task still ends exactly once, and what was done is not done again.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import {
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
} from "../support/link.js";

interface Ctx {
  db: TestDatabase;
  port: number;
  /** Replaced by restarts; ava copies the context into each test, so the processes live in one shared object. */
  live: { hub: HubProc; gateway: GatewayProc };
  key: string;
  admin: AdminClients;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase("link_restarts");
  const port = await freePort();
  const hub = await startHubProc({ databaseUrl: db.url, port });
  const admin = adminClients(hub.url);
  const { apiKey } = await admin.trusts.registerTrust({ name: "Leeds Teaching Hospitals", code: "leeds" });
  const gateway = startGatewayProc({ hubUrl: hub.url, trustCode: "leeds", key: apiKey });
  await linked(gateway);
  t.context = { db, port, live: { hub, gateway }, key: apiKey, admin, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.live?.gateway.proc.stop();
  await t.context.live?.hub.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

function restartGateway(t: { context: Ctx }): GatewayProc {
  const { key, live } = t.context;
  live.gateway = startGatewayProc({ hubUrl: live.hub.url, trustCode: "leeds", key, stateDir: live.gateway.stateDir });
  return live.gateway;
}

async function restartHub(t: { context: Ctx }): Promise<void> {
  t.context.live.hub = await startHubProc({ databaseUrl: t.context.db.url, port: t.context.port });
}

const startsOf = (g: GatewayProc, taskId: string) => g.taskLog().filter((e) => e.taskId === taskId && e.event === "started").length;

test.serial("a gateway killed mid-task and started again runs the task as its next attempt; it ends once", async (t) => {
  const { admin, ends, db } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "leeds", message: "survive", delay: durationFromMs(2_000) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  await t.context.live.gateway.proc.kill();
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.PENDING);
  const gw = restartGateway(t);
  await linked(gw);
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 2);
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["lost", "succeeded"]);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("a hub killed mid-task and started again records the result once; the gateway kept the task running", async (t) => {
  const { admin, ends, db } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "leeds", message: "hub crash", delay: durationFromMs(1_500) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = t.context.live.gateway.proc.logs.length;
  await t.context.live.hub.proc.kill();
  const lost = await t.context.live.gateway.proc.waitForLog("link to the hub lost; reconnecting", { since });
  t.truthy(lost.reason, "the gateway logs why it lost the link");
  // The task finishes while the hub is down; its result waits at the gateway.
  await t.context.live.gateway.proc.waitForLog((r) => r.msg === "task finished" && r.taskId === task!.id, { since });
  await restartHub(t);
  await linked(t.context.live.gateway, since);
  const done = await waitForTask(adminClients(t.context.live.hub.url).tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1, "not run again");
  t.is(startsOf(t.context.live.gateway, task!.id), 1);
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["succeeded"]);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("a hub stopped cleanly mid-task hands the task back; the gateway resumes it with that hub's successor", async (t) => {
  const { ends } = t.context;
  const admin = adminClients(t.context.live.hub.url);
  const { task } = await admin.tasks.createEchoTask({ trust: "leeds", message: "hub stop", delay: durationFromMs(3_000) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = t.context.live.gateway.proc.logs.length;
  t.is((await t.context.live.hub.proc.stop()).code, 0);
  const lost = await t.context.live.gateway.proc.waitForLog("link to the hub lost; reconnecting", { since });
  t.regex(String(lost.reason), /shutting down/);
  await restartHub(t);
  await linked(t.context.live.gateway, since);
  const done = await waitForTask(adminClients(t.context.live.hub.url).tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1);
  t.is(startsOf(t.context.live.gateway, task!.id), 1);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("tasks created while the trust is offline are delivered when its gateway comes back", async (t) => {
  const { ends } = t.context;
  const admin = adminClients(t.context.live.hub.url);
  t.is((await t.context.live.gateway.proc.stop()).code, 0);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await admin.tasks.createEchoTask({ trust: "leeds", message: `queued ${i}` })).task!.id);
  await new Promise((r) => setTimeout(r, 300));
  for (const id of ids) t.is((await admin.tasks.getTask({ taskId: id })).task!.state, TaskState.PENDING);
  const gw = restartGateway(t);
  await linked(gw);
  for (const id of ids) {
    const done = await waitForTask(admin.tasks, id);
    t.is(done.state, TaskState.SUCCEEDED);
    t.is(done.attempt, 1);
    t.deepEqual(await ends.endsOf(id), ["succeeded"]);
  }
});
