import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import { TaskOutputSchema, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { currentStreamOf, LinkNoLongerAllowedError, openStream } from "../link/stream-ownership.js";
import { FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import { registerTrust, rotateTrustKey, setTrustDisabled } from "../trusts/registry.js";
import { claimPendingTasks, claimPendingTasksFor } from "./claims.js";
import { createTask } from "./create-task.js";
import { expireOverdueTasks } from "./expiry.js";
import { getTask } from "./queries.js";
import { endSucceeded, recordAcks, recordResult, successOf } from "./task-outcomes.js";
import { SuccessBatcher } from "./success-batcher.js";
import { cancelTask } from "./cancel-task.js";
import { TaskEvents, type TaskEnded } from "./task-events.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const tdb = await createTestDatabase("tasks");
  t.context = { tdb, db: await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" })) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

const echo = (message: string) => create(TaskSpecSchema, { kind: { case: "echo", value: { message } } });
const echoOut = (message: string) => ({ case: "output" as const, value: create(TaskOutputSchema, { kind: { case: "echo", value: { message, trustCode: "x" } } }) });

async function trustWithStream(db: Database, code: string): Promise<{ trustId: string; keyHash: string; streamId: string }> {
  const { trust } = await registerTrust(db.em(), "test", { name: `${code} hospital`, code, region: "" });
  const streamId = crypto.randomUUID();
  await openStream(db.em(), { trustId: trust.id, keyHash: trust.keyHash, streamId, hubInstance: "h1", gatewayVersion: "test", capacity: { echo: 10 }, inFlight: [] });
  return { trustId: trust.id, keyHash: trust.keyHash, streamId };
}

function claim(db: Database, s: { trustId: string; streamId: string }, limit: number) {
  return claimPendingTasks(db.em(), { ...s, hubInstance: "h1", kind: "echo", limit });
}

test("the first result for a task wins, even when several arrive at once; the rest are ignored", async (t) => {
  const { db } = t.context;
  const s = await trustWithStream(db, "first");
  const task = await createTask(db.em(), { trustId: s.trustId, spec: echo("hi"), actor: "test" });
  await claim(db, s, 1);
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map((i) => recordResult(db.em(), s.trustId, task.id, echoOut(`answer ${i}`))));
  t.is(outcomes.filter((o) => o.recorded).length, 1);
  t.true(outcomes.filter((o) => !o.recorded).every((o) => !o.recorded && o.why === "ended"));
  const stored = (await getTask(db.em(), task.id)).task;
  t.is(stored.state, "succeeded");
  const winner = outcomes.findIndex((o) => o.recorded) + 1;
  t.deepEqual(stored.output, { echo: { message: `answer ${winner}`, trustCode: "x" } });
});

test("successes arriving at once through the group commit: each task recorded once, repeats ignored, another trust's task untouched", async (t) => {
  const { db } = t.context;
  const s = await trustWithStream(db, "batched");
  const other = await trustWithStream(db, "stranger");
  const tasks = [];
  for (let i = 0; i < 40; i++) tasks.push(await createTask(db.em(), { trustId: s.trustId, spec: echo(`t${i}`), actor: "test" }));
  const theirs = await createTask(db.em(), { trustId: other.trustId, spec: echo("theirs"), actor: "test" });
  await claim(db, s, 40);
  await claim(db, other, 1);
  const batcher = new SuccessBatcher(db);
  // Each task's answer twice (a gateway repeating itself after a reconnect), and a claim on another trust's task.
  const outcomes = await Promise.all([
    ...tasks.flatMap((task) => [recordResult(db.em(), s.trustId, task.id, echoOut(task.id), batcher), recordResult(db.em(), s.trustId, task.id, echoOut(task.id), batcher)]),
    recordResult(db.em(), s.trustId, theirs.id, echoOut("not mine"), batcher),
  ]);
  for (const [i, task] of tasks.entries()) {
    const pair = [outcomes[2 * i]!, outcomes[2 * i + 1]!];
    t.is(pair.filter((o) => o.recorded).length, 1, `task ${i} recorded once`);
    t.deepEqual((await getTask(db.em(), task.id)).task.output, { echo: { message: task.id, trustCode: "x" } });
  }
  t.deepEqual(outcomes.at(-1), { recorded: false, why: "unknown" });
  t.is((await getTask(db.em(), theirs.id)).task.state, "offered");
});

test("one statement claims for many streams: each owner gets its own trust's oldest tasks up to its limit, a replaced stream nothing", async (t) => {
  const { db } = t.context;
  const a = await trustWithStream(db, "claim-a");
  const b = await trustWithStream(db, "claim-b");
  const replaced = await trustWithStream(db, "claim-c");
  const owner = crypto.randomUUID();
  await openStream(db.em(), { trustId: replaced.trustId, keyHash: replaced.keyHash, streamId: owner, hubInstance: "h1", gatewayVersion: "test", capacity: { echo: 10 }, inFlight: [] });
  const made: Record<string, string[]> = { a: [], b: [], c: [] };
  for (let i = 0; i < 3; i++) {
    made.a!.push((await createTask(db.em(), { trustId: a.trustId, spec: echo(`a${i}`), actor: "test" })).id);
    made.b!.push((await createTask(db.em(), { trustId: b.trustId, spec: echo(`b${i}`), actor: "test" })).id);
    made.c!.push((await createTask(db.em(), { trustId: replaced.trustId, spec: echo(`c${i}`), actor: "test" })).id);
  }
  const [forA, forB, forStale] = await claimPendingTasksFor(db.em(), "h1", [
    { trustId: a.trustId, streamId: a.streamId, kind: "echo", limit: 2 },
    { trustId: b.trustId, streamId: b.streamId, kind: "echo", limit: 10 },
    { trustId: replaced.trustId, streamId: replaced.streamId, kind: "echo", limit: 10 },
  ]);
  t.deepEqual(forA!.map((x) => x.id), made.a!.slice(0, 2));
  t.deepEqual(forB!.map((x) => x.id), made.b);
  t.deepEqual(forStale, []);
  t.true([...forA!, ...forB!].every((x) => x.attempt === 1));
  t.deepEqual((await claim(db, { trustId: replaced.trustId, streamId: owner }, 10)).map((x) => x.id), made.c, "the owner still gets them");
});

test("acks of several streams in one statement mark their own offered tasks running, and nothing else", async (t) => {
  const { db } = t.context;
  const a = await trustWithStream(db, "acks-a");
  const b = await trustWithStream(db, "acks-b");
  const ta = await createTask(db.em(), { trustId: a.trustId, spec: echo("a"), actor: "test" });
  const tb = await createTask(db.em(), { trustId: b.trustId, spec: echo("b"), actor: "test" });
  const notOffered = await createTask(db.em(), { trustId: b.trustId, spec: echo("pending"), actor: "test" });
  await claim(db, a, 1);
  await claim(db, b, 1);
  // b's stream also claims a's task, which it does not hold; a's stream names a pending task of b.
  await recordAcks(db.em(), [
    { streamId: a.streamId, taskIds: [ta.id, notOffered.id] },
    { streamId: b.streamId, taskIds: [tb.id, ta.id, "not-a-uuid"] },
  ]);
  t.is((await getTask(db.em(), ta.id)).task.state, "running");
  t.is((await getTask(db.em(), tb.id)).task.state, "running");
  t.is((await getTask(db.em(), notOffered.id)).task.state, "pending");
  const [attempt] = await db.em().execute<{ acked_at: Date | null; stream_id: string }[]>("select acked_at, stream_id from task_attempt where task_id = ?", [ta.id]);
  t.truthy(attempt?.acked_at);
  t.is(attempt?.stream_id, a.streamId);
});

test("two statements ending the same tasks at once, in opposite orders and with acks between, end each task exactly once", async (t) => {
  const { db } = t.context;
  const s = await trustWithStream(db, "lock-order");
  const tasks = [];
  for (let i = 0; i < 150; i++) tasks.push(await createTask(db.em(), { trustId: s.trustId, spec: echo(`t${i}`), actor: "test" }));
  await claim(db, s, 150);
  const successes = tasks.map((task) => successOf(s.trustId, task.id, echoOut(task.id).value)!);
  const [forward, backward] = await Promise.all([
    endSucceeded(db.em(), successes),
    endSucceeded(db.em(), [...successes].reverse()),
    recordAcks(db.em(), [{ streamId: s.streamId, taskIds: tasks.map((x) => x.id).reverse() }]),
  ]);
  t.is(forward!.size + backward!.size, 150, "every task ended by exactly one of the two statements");
  t.is([...forward!].filter((id) => backward!.has(id)).length, 0);
});

test("two claims racing on one stream never get the same task", async (t) => {
  const { db } = t.context;
  const s = await trustWithStream(db, "race");
  for (let i = 0; i < 6; i++) await createTask(db.em(), { trustId: s.trustId, spec: echo(`t${i}`), actor: "test" });
  const claims = await Promise.all([claim(db, s, 3), claim(db, s, 3), claim(db, s, 3)]);
  const ids = claims.flatMap((c) => c.map((x) => x.id));
  t.is(ids.length, 6);
  t.is(new Set(ids).size, 6);
});

test("a stream whose key was rotated, or whose trust was disabled, after it authenticated does not become the owner", async (t) => {
  const { db } = t.context;
  const linked = await trustWithStream(db, "rotating");
  await rotateTrustKey(db.em(), "test", "rotating");
  const stale = { trustId: linked.trustId, keyHash: linked.keyHash, streamId: crypto.randomUUID(), hubInstance: "h1", gatewayVersion: "test", capacity: {}, inFlight: [] };
  const rotated = await t.throwsAsync(() => openStream(db.em(), stale), { instanceOf: LinkNoLongerAllowedError });
  t.false(rotated.disabled);
  t.is(await currentStreamOf(db.em(), linked.trustId), linked.streamId, "the refused stream did not take the link");

  const other = await trustWithStream(db, "disabling");
  await setTrustDisabled(db.em(), "test", "disabling", true, "test");
  const fresh = { trustId: other.trustId, keyHash: other.keyHash, streamId: crypto.randomUUID(), hubInstance: "h1", gatewayVersion: "test", capacity: {}, inFlight: [] };
  t.true((await t.throwsAsync(() => openStream(db.em(), fresh), { instanceOf: LinkNoLongerAllowedError })).disabled);
});

test("a replaced stream claims nothing, and the new owner takes over what the old one held", async (t) => {
  const { db } = t.context;
  const old = await trustWithStream(db, "replaced");
  const task = await createTask(db.em(), { trustId: old.trustId, spec: echo("moved"), actor: "test" });
  t.is((await claim(db, old, 1)).length, 1);
  t.is((await getTask(db.em(), task.id)).task.state, "offered");
  const fresh = crypto.randomUUID();
  const takeover = await openStream(db.em(), { trustId: old.trustId, keyHash: old.keyHash, streamId: fresh, hubInstance: "h2", gatewayVersion: "test", capacity: { echo: 1 }, inFlight: [] });
  t.deepEqual(takeover, { adopted: [], stop: [] });
  await createTask(db.em(), { trustId: old.trustId, spec: echo("not for the old stream"), actor: "test" });
  t.deepEqual(await claim(db, old, 5), [], "the replaced stream claims nothing");
  const reclaimed = await claim(db, { trustId: old.trustId, streamId: fresh }, 1);
  t.deepEqual(reclaimed.map((c) => [c.id, c.attempt]), [[task.id, 2]]);
});

test("overdue tasks expire exactly once however many sweepers run", async (t) => {
  const { db } = t.context;
  const { trust } = await registerTrust(db.em(), "test", { name: "sweep hospital", code: "sweep", region: "" });
  for (let i = 0; i < 30; i++) await createTask(db.em(), { trustId: trust.id, spec: echo(`late ${i}`), actor: "test", timeoutMs: 1_000 });
  await new Promise((r) => setTimeout(r, 1_100));
  const counts = await Promise.all([expireOverdueTasks(db.em(), 10), expireOverdueTasks(db.em(), 10), expireOverdueTasks(db.em(), 10), expireOverdueTasks(db.em(), 10)]);
  const more = await expireOverdueTasks(db.em());
  t.is(counts.reduce((a, b) => a + b, 0) + more, 30);
  t.is(await expireOverdueTasks(db.em()), 0);
});

test("a task needs a kind, a sane timeout and attempts, and an enabled trust", async (t) => {
  const { db } = t.context;
  const { trust } = await registerTrust(db.em(), "test", { name: "checks hospital", code: "checks", region: "" });
  await t.throwsAsync(createTask(db.em(), { trustId: trust.id, spec: create(TaskSpecSchema, {}), actor: "test" }), { instanceOf: InvalidInputError, message: /^spec:/ });
  await t.throwsAsync(createTask(db.em(), { trustId: trust.id, spec: echo("x"), actor: "test", timeoutMs: 10 }), { instanceOf: InvalidInputError, message: /^timeout:/ });
  await t.throwsAsync(createTask(db.em(), { trustId: trust.id, spec: echo("x"), actor: "test", maxAttempts: 11 }), { instanceOf: InvalidInputError, message: /^max_attempts:/ });
  await setTrustDisabled(db.em(), "test", trust.id, true);
  await t.throwsAsync(createTask(db.em(), { trustId: trust.id, spec: echo("x"), actor: "test" }), { instanceOf: FailedPreconditionError, message: /disabled/ });
});

test("creating a task inside the caller's transaction commits or rolls back with it", async (t) => {
  const { db } = t.context;
  const { trust } = await registerTrust(db.em(), "test", { name: "tx hospital", code: "txh", region: "" });
  let id = "";
  await t.throwsAsync(
    db.em().transactional(async (tx) => {
      id = (await createTask(tx, { trustId: trust.id, spec: echo("rolled back"), actor: "test" })).id;
      throw new Error("caller failed");
    }),
    { message: "caller failed" },
  );
  await t.throwsAsync(getTask(db.em(), id), { message: /not found/ });
});

test("stopping TaskEvents waits for a delivery under way, so the database it reads can be closed after it", async (t) => {
  const { db, tdb } = t.context;
  const other = await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" }));
  t.teardown(() => other.close());
  const events = new TaskEvents(other, createLogger({ service: "test", level: "silent" }));
  await events.start();
  const s = await trustWithStream(db, "stopping");
  const task = await createTask(db.em(), { trustId: s.trustId, spec: echo("slow listener"), actor: "test" });
  let release!: () => void;
  const listening = new Promise<void>((entered) => {
    events.subscribe((e) => {
      if (e.taskId !== task.id) return;
      entered();
      return new Promise<void>((r) => (release = r));
    });
  });
  await claim(db, s, 1);
  await recordResult(db.em(), s.trustId, task.id, echoOut("done"));
  await listening;
  let stopped = false;
  const stopping = events.stop().then(() => (stopped = true));
  await new Promise((r) => setImmediate(r));
  t.false(stopped, "stop waits while the listener runs");
  release();
  await stopping;
  t.true(stopped);
});

test("another replica's TaskEvents hears that a task ended, with the recorded output or error", async (t) => {
  const { db, tdb } = t.context;
  const other = await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" }));
  const events = new TaskEvents(other, createLogger({ service: "test", level: "silent" }));
  await events.start();
  t.teardown(async () => {
    await events.stop();
    await other.close();
  });
  const s = await trustWithStream(db, "events");
  const done = await createTask(db.em(), { trustId: s.trustId, spec: echo("to the other replica"), actor: "test", projectId: "p-1" });
  const dropped = await createTask(db.em(), { trustId: s.trustId, spec: echo("cancelled"), actor: "test" });
  // Other tests in this file end tasks too: keep only this test's.
  const heard: TaskEnded[] = [];
  events.subscribe((e) => void (e.trustId === s.trustId && heard.push(e)), { kinds: [TaskKind.ECHO] });
  await claim(db, s, 2);
  await recordResult(db.em(), s.trustId, done.id, echoOut("answered"));
  await cancelTask(db.em(), { taskId: dropped.id, reason: "not needed", actor: "test" });
  for (let i = 0; i < 500 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(heard.length, 2, "both ends were heard within 10 s");
  const byId = new Map(heard.map((e) => [e.taskId, e]));
  t.is(byId.get(done.id)?.state, "succeeded");
  t.is(byId.get(done.id)?.projectId, "p-1");
  const out = byId.get(done.id)?.output?.kind;
  t.is(out?.case === "echo" ? out.value.message : "", "answered");
  t.is(byId.get(dropped.id)?.state, "cancelled");
  t.regex(byId.get(dropped.id)?.error?.message ?? "", /not needed/);
  await new Promise((r) => setTimeout(r, 200));
  t.is(heard.length, 2, "each end is heard once");
});
