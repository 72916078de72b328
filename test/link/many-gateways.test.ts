/**
 * 100 trusts linked to one hub process at once (the gateways share one process: each still has its
 * own HTTP/2 connection and stream).
 */
import anyTest, { type TestFn } from "ava";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { LinkStatus } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { startSimulatedGateways, type SimulatedGateways } from "@flip/trust-gateway/simulation/simulated-gateways.js";
import { adminClients, startHubProc, TaskEndWatcher, waitForTask, type AdminClients, type HubProc } from "../support/link.js";

const TRUSTS = 100;

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  admin: AdminClients;
  swarm: SimulatedGateways;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  t.timeout(120_000);
  const db = await createTestDatabase("link_many");
  const hub = await startHubProc({ databaseUrl: db.url, env: { FLIP_HEARTBEAT_INTERVAL_MS: "2000", FLIP_OFFLINE_AFTER_MS: "10000" } });
  const admin = adminClients(hub.url);
  const trusts = [];
  for (let i = 0; i < TRUSTS; i++) {
    const code = `t${String(i).padStart(3, "0")}`;
    trusts.push({ code, key: (await admin.trusts.registerTrust({ name: `Trust ${i}`, code })).apiKey });
  }
  const swarm = await startSimulatedGateways({ hubUrl: hub.url, trusts, log: createLogger({ service: "gateways", level: "warn" }) });
  t.context = { db, hub, admin, swarm, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.swarm?.close();
  await t.context.hub?.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

test.serial("100 gateways link to one hub at once and all show online", async (t) => {
  t.true(t.context.swarm.gateways.every((g) => g.link.state === "linked"));
  const { trusts } = await t.context.admin.trusts.listTrusts({ page: { pageSize: 500 } });
  t.is(trusts.length, TRUSTS);
  t.is(trusts.filter((x) => x.linkStatus === LinkStatus.ONLINE).length, TRUSTS);
});

test.serial("a task for every one of them completes, each exactly once", async (t) => {
  const { admin, ends } = t.context;
  const ids = await Promise.all(Array.from({ length: TRUSTS }, async (_, i) => (await admin.tasks.createEchoTask({ trust: `t${String(i).padStart(3, "0")}`, message: `hello ${i}` })).task!.id));
  for (const id of ids) {
    const done = await waitForTask(admin.tasks, id);
    t.is(done.state, TaskState.SUCCEEDED);
    t.deepEqual(await ends.endsOf(id), ["succeeded"]);
  }
});
