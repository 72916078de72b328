/**
 * Two hub processes on one Postgres: a trust linked to either hub gets tasks created through the
 * other at once (LISTEN/NOTIFY, not a sweep), and the replicas never both own a trust's link.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
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
import { RawLink } from "../support/raw-link.js";

interface Ctx {
  db: TestDatabase;
  hubA: HubProc;
  hubB: HubProc;
  adminA: AdminClients;
  adminB: AdminClients;
  keys: Record<string, string>;
  gateway: GatewayProc;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase("link_multi_hub");
  // Sweeps only expire deadlines; a long interval on A shows delivery does not wait for one.
  const [hubA, hubB] = await Promise.all([
    startHubProc({ databaseUrl: db.url, name: "hub-a", env: { FLIP_SWEEP_INTERVAL_MS: "60000" } }),
    startHubProc({ databaseUrl: db.url, name: "hub-b" }),
  ]);
  const adminA = adminClients(hubA.url);
  const adminB = adminClients(hubB.url);
  const keys: Record<string, string> = {};
  for (const code of ["sth", "mft", "nbt"]) keys[code] = (await adminA.trusts.registerTrust({ name: `${code} hospital`, code })).apiKey;
  const gateway = startGatewayProc({ hubUrl: hubA.url, trustCode: "sth", key: keys.sth! });
  await linked(gateway);
  t.context = { db, hubA, hubB, adminA, adminB, keys, gateway, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.gateway?.proc.stop();
  await Promise.all([t.context.hubA?.proc.stop(), t.context.hubB?.proc.stop()]);
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

test.serial("a task created on one hub reaches a trust linked to the other hub at once", async (t) => {
  const { adminB, ends, db } = t.context;
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const { task } = await adminB.tasks.createEchoTask({ trust: "sth", message: `via b ${i}` });
    const done = await waitForTask(adminB.tasks, task!.id);
    t.is(done.state, TaskState.SUCCEEDED);
    t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
    t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.hub_instance), ["hub-a"], "offered by the replica holding the link");
    latencies.push(timestampMs(done.endedAt!) - timestampMs(done.createdAt!));
  }
  // The median, so that one scheduling hiccup on a loaded machine does not decide it.
  const median = [...latencies].sort((a, b) => a - b)[2]!;
  t.true(median < 1_000, `created → recorded took ${latencies.join(", ")} ms`);
});

test.serial("a task cancelled on one hub is stopped at a trust linked to the other", async (t) => {
  const { adminA, adminB, gateway, ends } = t.context;
  const { task } = await adminA.tasks.createEchoTask({ trust: "sth", message: "long", delay: durationFromMs(60_000) });
  await waitForTask(adminA.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  const since = gateway.proc.logs.length;
  await adminB.tasks.cancelTask({ taskId: task!.id, reason: "from the other replica" });
  await gateway.proc.waitForLog((r) => r.msg === "hub cancelled a task; stopping it" && r.taskId === task!.id, { since });
  t.deepEqual(await ends.endsOf(task!.id), ["cancelled"]);
});

test.serial("a trust's newer stream on one hub ends its older stream on the other", async (t) => {
  const { hubA, hubB, keys, adminB, ends } = t.context;
  const onA = RawLink.open(hubA.url, keys.mft, { trustCode: "mft" });
  await onA.next("welcome");
  const onB = RawLink.open(hubB.url, keys.mft, { trustCode: "mft" });
  await onB.next("welcome");
  t.is((await onA.ended())?.code, Code.Aborted);
  // Only the new owner is offered the trust's work.
  const { task } = await adminB.tasks.createEchoTask({ trust: "mft", message: "to the owner" });
  const offer = await onB.next("offer");
  t.is(offer.taskId, task!.id);
  onB.send({ case: "result", value: { taskId: offer.taskId, attempt: offer.attempt, outcome: { case: "output", value: { kind: { case: "echo", value: { message: "ok", trustCode: "mft" } } } } } });
  t.true((await onB.next("resultAck")).recorded);
  onB.close();
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test.serial("both hubs sweep deadlines, and every overdue task expires exactly once", async (t) => {
  const { adminA, ends } = t.context;
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push((await adminA.tasks.createEchoTask({ trust: "nbt", message: `never delivered ${i}`, timeout: durationFromMs(1_000) })).task!.id);
  for (const id of ids) {
    t.is((await waitForTask(adminA.tasks, id)).state, TaskState.EXPIRED);
  }
  await new Promise((r) => setTimeout(r, 500));
  for (const id of ids) t.deepEqual(await ends.endsOf(id), ["expired"]);
});
