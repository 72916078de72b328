/**
 * What the hub records from a gateway, with the test playing the gateway by hand: duplicate results,
 * tasks held across a reconnect, lost attempts, retries, another trust's task.
 */
import anyTest, { type TestFn } from "ava";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { LinkStatus } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskErrorCode } from "@flip/gen/flip/link/v1/link_pb.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { adminClients, attemptsOf, startHubProc, TaskEndWatcher, waitForTask, type AdminClients, type HubProc } from "../support/link.js";
import { RawLink } from "../support/raw-link.js";

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  admin: AdminClients;
  keys: Record<string, string>;
  ends: TaskEndWatcher;
}
const test = anyTest as TestFn<Ctx>;

// One trust per test: each test holds its trust's only stream.
const TRUSTS = ["dup", "connect", "adopt", "reoffer", "bounded", "other", "victim", "away", "retry", "offline"];

test.before(async (t) => {
  const db = await createTestDatabase("link_results");
  const hub = await startHubProc({ databaseUrl: db.url });
  const admin = adminClients(hub.url);
  const keys: Record<string, string> = {};
  for (const code of TRUSTS) keys[code] = (await admin.trusts.registerTrust({ name: `${code} hospital`, code })).apiKey;
  t.context = { db, hub, admin, keys, ends: await TaskEndWatcher.start(db.url) };
});

test.after.always(async (t) => {
  await t.context.hub?.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

const echoOutput = (message: string, trustCode: string) => ({ case: "output" as const, value: { kind: { case: "echo" as const, value: { message, trustCode } } } });

function link(t: { context: Ctx }, code: string, inFlight: { taskId: string; attempt: number }[] = [], protocol: "grpc" | "connect" = "grpc"): RawLink {
  return RawLink.open(t.context.hub.url, t.context.keys[code], { trustCode: code, hello: { capacity: [{ kind: 1, maxConcurrent: 4 }], inFlight } }, protocol);
}

test("a gateway speaking the Connect protocol instead of gRPC gets the same link: offers, results, acknowledgements", async (t) => {
  const { admin, ends } = t.context;
  const gateway = link(t, "connect", [], "connect");
  t.is((await gateway.next("welcome")).trustCode, "connect");
  const { task } = await admin.tasks.createEchoTask({ trust: "connect", message: "over connect" });
  const offer = await gateway.next("offer");
  t.is(offer.taskId, task!.id);
  gateway.send({ case: "ack", value: { taskId: offer.taskId, attempt: offer.attempt } });
  const result = { taskId: offer.taskId, attempt: offer.attempt, outcome: echoOutput("over connect", "connect") };
  gateway.send({ case: "result", value: result });
  gateway.send({ case: "result", value: result });
  t.true((await gateway.next("resultAck")).recorded);
  t.false((await gateway.next("resultAck")).recorded);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
  gateway.close();
});

test("a duplicate result is acknowledged but not recorded, before and after a reconnect; the task ends once", async (t) => {
  const { admin, ends } = t.context;
  const first = link(t, "dup");
  await first.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "dup", message: "once" });
  const offer = await first.next("offer");
  t.is(offer.taskId, task!.id);
  first.send({ case: "ack", value: { taskId: offer.taskId, attempt: offer.attempt } });
  const result = { taskId: offer.taskId, attempt: offer.attempt, outcome: echoOutput("once", "dup") };
  first.send({ case: "result", value: result });
  first.send({ case: "result", value: result });
  t.true((await first.next("resultAck")).recorded);
  t.false((await first.next("resultAck")).recorded);
  first.close();
  const second = link(t, "dup", [{ taskId: offer.taskId, attempt: offer.attempt }]);
  await second.next("welcome");
  second.send({ case: "result", value: { ...result, outcome: echoOutput("a different answer", "dup") } });
  t.false((await second.next("resultAck")).recorded);
  second.close();
  const done = (await admin.tasks.getTask({ taskId: task!.id })).task!;
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.output?.kind.case === "echo" ? done.output.kind.value.message : "", "once", "the first result wins");
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test("a task the gateway still holds after a reconnect continues on the new stream and is not offered again", async (t) => {
  const { admin, ends, db } = t.context;
  const first = link(t, "adopt");
  await first.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "adopt", message: "held" });
  const offer = await first.next("offer");
  first.send({ case: "ack", value: { taskId: offer.taskId, attempt: 1 } });
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.RUNNING);
  first.close();
  await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.PENDING);
  const second = link(t, "adopt", [{ taskId: offer.taskId, attempt: 1 }]);
  await second.next("welcome");
  await t.throwsAsync(second.next("offer", 700), { message: /no offer/ });
  t.is((await admin.tasks.getTask({ taskId: task!.id })).task!.state, TaskState.RUNNING);
  second.send({ case: "result", value: { taskId: offer.taskId, attempt: 1, outcome: echoOutput("held", "adopt") } });
  t.true((await second.next("resultAck")).recorded);
  second.close();
  const done = (await admin.tasks.getTask({ taskId: task!.id })).task!;
  t.is(done.state, TaskState.SUCCEEDED);
  t.is(done.attempt, 1);
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["succeeded"]);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test("a task the gateway does not report after a reconnect is offered again as its next attempt", async (t) => {
  const { admin, ends, db } = t.context;
  const first = link(t, "reoffer");
  await first.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "reoffer", message: "again" });
  const offer = await first.next("offer");
  t.is(offer.attempt, 1);
  first.close();
  const second = link(t, "reoffer");
  await second.next("welcome");
  const again = await second.next("offer");
  t.is(again.taskId, task!.id);
  t.is(again.attempt, 2);
  second.send({ case: "result", value: { taskId: again.taskId, attempt: 2, outcome: echoOutput("again", "reoffer") } });
  t.true((await second.next("resultAck")).recorded);
  second.close();
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["lost", "succeeded"]);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test("a task lost on every attempt fails when its attempts run out, with the reason recorded", async (t) => {
  const { admin, ends } = t.context;
  const { task } = await admin.tasks.createEchoTask({ trust: "bounded", message: "doomed", maxAttempts: 2 });
  for (const attempt of [1, 2]) {
    const l = link(t, "bounded");
    t.is((await l.next("offer")).attempt, attempt);
    l.close();
    await waitForTask(admin.tasks, task!.id, (x) => x.state === TaskState.PENDING);
  }
  const last = link(t, "bounded");
  await last.next("welcome");
  const done = await waitForTask(admin.tasks, task!.id);
  last.close();
  t.is(done.state, TaskState.FAILED);
  t.regex(done.endReason, /no attempts left/);
  t.is(done.attempt, 2);
  t.deepEqual(await ends.endsOf(task!.id), ["failed"]);
});

test("a result for another trust's task is ignored", async (t) => {
  const { admin, ends } = t.context;
  const victim = link(t, "victim");
  await victim.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "victim", message: "mine", delay: durationFromMs(10_000) });
  await victim.next("offer");
  const other = link(t, "other");
  await other.next("welcome");
  other.send({ case: "result", value: { taskId: task!.id, attempt: 1, outcome: echoOutput("forged", "other") } });
  t.false((await other.next("resultAck")).recorded);
  t.not((await admin.tasks.getTask({ taskId: task!.id })).task!.state, TaskState.SUCCEEDED);
  victim.send({ case: "result", value: { taskId: task!.id, attempt: 1, outcome: echoOutput("mine", "victim") } });
  t.true((await victim.next("resultAck")).recorded);
  victim.close();
  other.close();
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test("a gateway that comes back holding a task cancelled meanwhile is told to stop it", async (t) => {
  const { admin, ends } = t.context;
  const first = link(t, "away");
  await first.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "away", message: "stale", delay: durationFromMs(60_000) });
  const offer = await first.next("offer");
  first.close();
  await admin.tasks.cancelTask({ taskId: task!.id, reason: "changed my mind" });
  const second = link(t, "away", [{ taskId: offer.taskId, attempt: 1 }]);
  const cancel = await second.next("cancel");
  t.is(cancel.taskId, task!.id);
  second.send({ case: "result", value: { taskId: task!.id, attempt: 1, outcome: echoOutput("too late", "away") } });
  t.false((await second.next("resultAck")).recorded);
  second.close();
  t.is((await admin.tasks.getTask({ taskId: task!.id })).task!.state, TaskState.CANCELLED);
  t.deepEqual(await ends.endsOf(task!.id), ["cancelled"]);
});

test("a retryable error sends the task back for another attempt; a later success is recorded", async (t) => {
  const { admin, ends, db } = t.context;
  const l = link(t, "retry");
  await l.next("welcome");
  const { task } = await admin.tasks.createEchoTask({ trust: "retry", message: "flaky" });
  const first = await l.next("offer");
  l.send({ case: "result", value: { taskId: first.taskId, attempt: 1, outcome: { case: "error", value: { code: TaskErrorCode.UNAVAILABLE, message: "data-access is restarting", retryable: true } } } });
  t.true((await l.next("resultAck")).recorded);
  const second = await l.next("offer");
  t.is(second.attempt, 2);
  l.send({ case: "result", value: { taskId: second.taskId, attempt: 2, outcome: echoOutput("flaky", "retry") } });
  t.true((await l.next("resultAck")).recorded);
  l.close();
  t.is((await admin.tasks.getTask({ taskId: task!.id })).task!.state, TaskState.SUCCEEDED);
  t.deepEqual((await attemptsOf(db.url, task!.id)).map((a) => a.outcome), ["retry", "succeeded"]);
  t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
});

test("a trust shows online while its link is up and offline once its heartbeats stop", async (t) => {
  const { admin } = t.context;
  const l = link(t, "offline");
  await l.next("welcome");
  l.send({ case: "heartbeat", value: {} });
  const status = async () => (await admin.trusts.getTrust({ trust: "offline" })).trust!.linkStatus;
  await eventually(status, (s) => s === LinkStatus.ONLINE, { what: "the trust showing online" });
  l.close();
  await eventually(status, (s) => s === LinkStatus.OFFLINE, { timeoutMs: 5_000, what: "the trust showing offline" });
  t.truthy((await admin.trusts.getTrust({ trust: "offline" })).trust!.lastSeenAt);
});
