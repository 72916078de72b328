import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import { TaskOutputSchema, TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { openStream } from "../link/stream-ownership.js";
import { registerTrust } from "../trusts/registry.js";
import { claimPendingTasks } from "./claims.js";
import { createTask } from "./create-task.js";
import { recordResult } from "./task-outcomes.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const tdb = await createTestDatabase("fair_claims");
  t.context = { tdb, db: await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" })) };
});
test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

const echo = (message: string) => create(TaskSpecSchema, { kind: { case: "echo", value: { message } } });
const answer = (message: string) => ({ case: "output" as const, value: create(TaskOutputSchema, { kind: { case: "echo", value: { message, trustCode: "x" } } }) });

async function connectedTrust(db: Database, code: string) {
  const { trust } = await registerTrust(db.em(), "test", { name: `${code} hospital`, code, region: "" });
  const streamId = crypto.randomUUID();
  await openStream(db.em(), { trustId: trust.id, keyHash: trust.keyHash, streamId, hubInstance: "h1", gatewayVersion: "test", capacity: { echo: 1 }, inFlight: [] });
  return { trustId: trust.id, streamId };
}

/** Queues `n` echo tasks as `actor`, one after another, and returns their messages. */
async function queue(db: Database, trustId: string, actor: string, n: number, projectId?: string): Promise<string[]> {
  const messages: string[] = [];
  for (let i = 1; i <= n; i++) {
    const message = `${actor} #${i}`;
    await createTask(db.em(), { trustId, spec: echo(message), actor, projectId });
    messages.push(message);
  }
  return messages;
}

async function claimOne(db: Database, s: { trustId: string; streamId: string }) {
  const [claimed] = await claimPendingTasks(db.em(), { ...s, hubInstance: "h1", kind: "echo", limit: 1 });
  const spec = claimed?.spec as { echo?: { message?: string } } | undefined;
  return { id: claimed?.id, message: spec?.echo?.message };
}

test("a user's single task is offered before another user's older backlog, one slot at a time", async (t) => {
  const { db } = t.context;
  const s = await connectedTrust(db, "slot1");
  await queue(db, s.trustId, "user:a", 5);
  await queue(db, s.trustId, "user:b", 1);
  const order: string[] = [];
  // The trust has one slot: each task is claimed after the one before it has ended.
  for (let i = 0; i < 6; i++) {
    const next = await claimOne(db, s);
    order.push(next.message!);
    await recordResult(db.em(), s.trustId, next.id!, answer("done"));
  }
  t.deepEqual(order, ["user:a #1", "user:b #1", "user:a #2", "user:a #3", "user:a #4", "user:a #5"]);
});

test("while one user's tasks run, the next slot goes to a user with none running", async (t) => {
  const { db } = t.context;
  const s = await connectedTrust(db, "busy");
  await queue(db, s.trustId, "user:a", 3);
  await queue(db, s.trustId, "user:b", 2);
  await queue(db, s.trustId, "user:c", 1);
  const batch = await claimPendingTasks(db.em(), { ...s, hubInstance: "h1", kind: "echo", limit: 4 });
  const messages = batch.map((c) => (c.spec as { echo: { message: string } }).echo.message);
  t.deepEqual(messages.sort(), ["user:a #1", "user:a #2", "user:b #1", "user:c #1"].sort(), "every user's first turn comes before anyone's second");
});

test("between users on the same turn, a task in a project with fewer turns taken goes first", async (t) => {
  const { db } = t.context;
  const s = await connectedTrust(db, "projects");
  const [p, q] = [crypto.randomUUID(), crypto.randomUUID()];
  await createTask(db.em(), { trustId: s.trustId, spec: echo("a in p"), actor: "user:a", projectId: p });
  await createTask(db.em(), { trustId: s.trustId, spec: echo("b in p, first"), actor: "user:b", projectId: p });
  await createTask(db.em(), { trustId: s.trustId, spec: echo("b in p, second"), actor: "user:b", projectId: p });
  await createTask(db.em(), { trustId: s.trustId, spec: echo("a in q"), actor: "user:a", projectId: q });
  const batch = await claimPendingTasks(db.em(), { ...s, hubInstance: "h1", kind: "echo", limit: 3 });
  const messages = batch.map((c) => (c.spec as { echo: { message: string } }).echo.message);
  t.deepEqual(messages.sort(), ["a in p", "a in q", "b in p, first"].sort(), "a's first task in q is their project's first turn; b's second is their project's second");
});
