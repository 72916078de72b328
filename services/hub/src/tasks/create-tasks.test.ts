import anyTest, { type TestFn } from "ava";
import { create } from "@bufbuild/protobuf";
import pg from "pg";
import { TaskSpecSchema } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { FailedPreconditionError, InvalidInputError, NotFoundError } from "../domain/errors.js";
import { registerTrust, setTrustDisabled } from "../trusts/registry.js";
import { TASK_READY_CHANNEL } from "./channels.js";
import { createTasks } from "./create-task.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const tdb = await createTestDatabase("batch");
  t.context = { tdb, db: await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" })) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

const echo = (message: string) => create(TaskSpecSchema, { kind: { case: "echo", value: { message } } });

/** `n` enabled trusts named `<prefix>-<i>`, inserted directly: registering each through the API would be the slow part. */
async function bulkTrusts(db: Database, prefix: string, n: number): Promise<{ id: string; code: string }[]> {
  return await db.em().execute<{ id: string; code: string }[]>(
    `insert into trust (id, name, code, region, key_id, key_hash, created_at)
     select gen_random_uuid(), ? || ' hospital ' || i, ? || '-' || i, '', ? || i, 'unused', now() from generate_series(1, ?) i
     returning id, code`,
    [prefix, prefix, `${prefix}key`, n],
  );
}

async function count(db: Database, query: string, params: unknown[]): Promise<number> {
  const [row] = await db.em().execute<{ n: string }[]>(`select count(*) as n from ${query}`, params);
  return Number(row!.n);
}

test("a round of 1,000 tasks, one per trust, is created in one call with one audit entry, and every trust is woken", async (t) => {
  const { db, tdb } = t.context;
  const trusts = await bulkTrusts(db, "round", 1_000);
  const listener = new pg.Client({ connectionString: tdb.url });
  await listener.connect();
  t.teardown(() => listener.end());
  const woken = new Set<string>();
  listener.on("notification", (n) => void (n.channel === TASK_READY_CHANNEL && woken.add(n.payload ?? "")));
  await listener.query(`listen ${TASK_READY_CHANNEL}`);

  const started = performance.now();
  const tasks = await createTasks(db.em(), trusts.map((trust) => ({ trustId: trust.id, spec: echo("round"), projectId: "p-round" })), { actor: "test" });
  t.log(`1,000 tasks created in ${Math.round(performance.now() - started)} ms`);

  t.deepEqual(tasks.map((task) => task.trustId), trusts.map((trust) => trust.id), "one task per trust, in request order");
  t.is(await count(db, "task where state = 'pending' and project_id = 'p-round' and id = any(?::uuid[])", [`{${tasks.map((x) => x.id).join(",")}}`]), 1_000);
  const audits = await db.em().execute<{ target: string; after_json: string }[]>("select target, after_json from audit_entry where action = 'task.batch_created'");
  t.is(audits.length, 1);
  t.is(audits[0]!.target, "project:p-round");
  const after = JSON.parse(audits[0]!.after_json) as { count: number; kind: string; tasks: { id: string; trustId: string; trustCode: string }[] };
  t.like(after, { count: 1_000, kind: "echo" });
  t.deepEqual(after.tasks[0], { id: tasks[0]!.id, trustId: trusts[0]!.id, trustCode: "round-1" });
  await eventually(() => woken.size, (n) => n >= 1_000, { what: "a wake-up for each of the 1,000 trusts" });
  t.true(trusts.every((trust) => woken.has(trust.id)));
});

test("a missing or disabled trust fails the whole batch, and nothing of it is created", async (t) => {
  const { db } = t.context;
  const [good, off] = await bulkTrusts(db, "allornone", 2);
  await setTrustDisabled(db.em(), "test", off!.id, true);
  const missing = crypto.randomUUID();
  // Tests in this file run concurrently: only audit entries naming this test's trust are its own.
  const ownAudits = () => count(db, "audit_entry where action like 'task.%' and after_json like ?", [`%${good!.id}%`]);

  await t.throwsAsync(createTasks(db.em(), [{ trustId: good!.id, spec: echo("x") }, { trustId: missing, spec: echo("x") }], { actor: "test" }), {
    instanceOf: NotFoundError,
    message: `trust "${missing}" not found`,
  });
  await t.throwsAsync(createTasks(db.em(), [{ trustId: good!.id, spec: echo("x") }, { trustId: off!.id, spec: echo("x") }], { actor: "test" }), {
    instanceOf: FailedPreconditionError,
    message: /trust "allornone-2" is disabled/,
  });
  t.is(await count(db, "task where trust_id = ?", [good!.id]), 0);
  t.is(await ownAudits(), 0);
});

test("a batch names each trust once and at least one, and every task in it must be valid", async (t) => {
  const { db } = t.context;
  const { trust } = await registerTrust(db.em(), "test", { name: "checks hospital", code: "batch-checks", region: "" });
  const twice = [{ trustId: trust.id, spec: echo("a") }, { trustId: trust.id, spec: echo("b") }];
  await t.throwsAsync(createTasks(db.em(), twice, { actor: "test" }), { instanceOf: InvalidInputError, message: /^trusts: trust ".+" is listed twice/ });
  await t.throwsAsync(createTasks(db.em(), [], { actor: "test" }), { instanceOf: InvalidInputError, message: /^trusts:/ });
  const [other] = await bulkTrusts(db, "checks", 1);
  const oneBad = [{ trustId: trust.id, spec: echo("fine") }, { trustId: other!.id, spec: echo("too long"), timeoutMs: 48 * 3_600_000 }];
  await t.throwsAsync(createTasks(db.em(), oneBad, { actor: "test" }), { instanceOf: InvalidInputError, message: /^timeout:/ });
  t.is(await count(db, "task where trust_id = ?", [trust.id]), 0);
});
