/**
 * A bad network between a trust and the hub: a TCP proxy in the middle cuts connections, adds
 * latency, or silently drops everything. Tasks are delayed, never lost and never done twice.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import {
  adminClients,
  linked,
  startGatewayProc,
  startHubProc,
  TaskEndWatcher,
  waitForTask,
  type AdminClients,
  type GatewayProc,
  type HubProc,
} from "../support/link.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  proxy: TcpProxy;
  key: string;
  live: { gateway: GatewayProc };
  admin: AdminClients;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase("link_network");
  const hub = await startHubProc({ databaseUrl: db.url });
  const proxy = await startTcpProxy({ host: "127.0.0.1", port: hub.port });
  const admin = adminClients(hub.url);
  const { apiKey } = await admin.trusts.registerTrust({ name: "Oxford University Hospitals", code: "ouh" });
  const gateway = startGatewayProc({ hubUrl: proxy.url, trustCode: "ouh", key: apiKey });
  await linked(gateway);
  t.context = { db, hub, proxy, key: apiKey, live: { gateway }, admin, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.live?.gateway.proc.stop();
  await t.context.proxy?.close();
  await t.context.hub?.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

const startsOf = (g: GatewayProc, taskId: string) => g.taskLog().filter((e) => e.taskId === taskId && e.event === "started").length;

test.serial("a dropped TCP connection mid-task: the gateway reconnects and the task ends once, run once", async (t) => {
  const { admin, ends, proxy, live } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "ouh", message: "cut", delay: durationFromMs(1_500) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = live.gateway.proc.logs.length;
  proxy.cutAll();
  const lost = await live.gateway.proc.waitForLog("link to the hub lost; reconnecting", { since });
  t.truthy(lost.reason);
  await linked(live.gateway, since);
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1);
  t.is(startsOf(live.gateway, task!.id), 1);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("latency on the link slows tasks down but loses none", async (t) => {
  const { admin, ends, proxy } = t.context;
  proxy.setDelay(150);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await admin.tasks.createEchoTask({ trust: "ouh", message: `slow link ${i}` })).task!.id);
    for (const id of ids) {
      t.is((await waitForTask(admin.tasks, id)).state, TaskState.SUCCEEDED);
      t.deepEqual(await ends.endsOf(id), ["succeeded"]);
    }
  } finally {
    proxy.setDelay(0);
  }
});

test.serial("a link that goes silent without a reset is noticed by heartbeats and pings; the task ends once after it recovers", async (t) => {
  const { admin, ends, proxy, live } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "ouh", message: "silent", delay: durationFromMs(1_000) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = live.gateway.proc.logs.length;
  proxy.blackhole(true);
  const noticed = Date.now();
  await live.gateway.proc.waitForLog("link to the hub lost; reconnecting", { since, timeoutMs: 10_000 });
  t.true(Date.now() - noticed < 5_000, "noticed within a few heartbeat intervals");
  proxy.blackhole(false);
  await linked(live.gateway, since);
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1);
  t.is(startsOf(live.gateway, task!.id), 1);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("a result finished while the link is down survives a gateway restart and is recorded once", async (t) => {
  const { admin, ends, proxy, live, key } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "ouh", message: "kept on disk", delay: durationFromMs(800) });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  proxy.blackhole(true);
  await live.gateway.proc.waitForLog((r) => r.msg === "task finished" && r.taskId === task!.id);
  await live.gateway.proc.kill();
  proxy.blackhole(false);
  live.gateway = startGatewayProc({ hubUrl: proxy.url, trustCode: "ouh", key, stateDir: live.gateway.stateDir });
  await linked(live.gateway);
  const done = await waitForTask(admin.tasks, task!.id);
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1, "the stored result was delivered; the task was not run again");
  t.is(startsOf(live.gateway, task!.id), 1);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});
