/**
 * Create RPCs with an idempotency key, against a real hub and PostgreSQL: a retry after a lost answer,
 * or two calls racing with one key, create one thing; a key reused for another request is refused.
 */
import anyTest, { type TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  h: TestHub;
  admin: string;
  alice: string;
  bob: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const h = await startTestHub();
  await h.registerTrust("north");
  const admin = (await h.firstAdmin()).token;
  const alice = (await h.user(admin, "alice@uni.test", [{ role: Role.RESEARCHER }])).token;
  const bob = (await h.user(admin, "bob@uni.test", [{ role: Role.RESEARCHER }])).token;
  t.context = { h, admin, alice, bob };
});
test.after.always(async (t) => {
  await t.context.h?.close();
});

async function count(t: { context: Ctx }, sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await t.context.h.hub.db.em().execute<{ n: string }[]>(`select count(*) as n from (${sql}) q`, params);
  return Number(row!.n);
}

async function refusal(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("the call was not refused");
}

test("a create retried with the same key returns the first task and creates no second one", async (t) => {
  const tasks = t.context.h.client(TaskService, t.context.admin);
  const key = crypto.randomUUID();
  const first = await tasks.createEchoTask({ trust: "north", message: "retried", idempotencyKey: key });
  const retry = await tasks.createEchoTask({ trust: "north", message: "retried", idempotencyKey: key });
  t.is(retry.task!.id, first.task!.id);
  t.is(await count(t, "select 1 from task where spec->'echo'->>'message' = 'retried'"), 1);
});

test("two calls racing with one key create one batch of tasks and both get it", async (t) => {
  const tasks = t.context.h.client(TaskService, t.context.admin);
  const key = crypto.randomUUID();
  const calls = await Promise.all([1, 2, 3].map(() => tasks.createEchoTasks({ trusts: ["north"], message: "raced", idempotencyKey: key })));
  t.is(new Set(calls.map((c) => c.tasks[0]!.id)).size, 1);
  t.is(await count(t, "select 1 from task where spec->'echo'->>'message' = 'raced'"), 1);
});

test("a key reused for a different request is refused with AlreadyExists and creates nothing", async (t) => {
  const tasks = t.context.h.client(TaskService, t.context.admin);
  const key = crypto.randomUUID();
  await tasks.createEchoTask({ trust: "north", message: "original", idempotencyKey: key });
  const err = await refusal(tasks.createEchoTask({ trust: "north", message: "something else", idempotencyKey: key }));
  t.is(Code[err.code], Code[Code.AlreadyExists]);
  t.regex(err.rawMessage, /idempotency key ".+" was already used for a different CreateEchoTask request; send a new key with each new request/);
  t.is(await count(t, "select 1 from task where spec->'echo'->>'message' = 'something else'"), 0);
});

test("without a key every call creates", async (t) => {
  const tasks = t.context.h.client(TaskService, t.context.admin);
  await tasks.createEchoTask({ trust: "north", message: "no key" });
  await tasks.createEchoTask({ trust: "north", message: "no key" });
  t.is(await count(t, "select 1 from task where spec->'echo'->>'message' = 'no key'"), 2);
});

test("keys belong to their caller: another user's call with the same key creates their own project", async (t) => {
  const key = crypto.randomUUID();
  const alices = await t.context.h.client(ProjectService, t.context.alice).createProject({ name: "Shared key study", idempotencyKey: key });
  const again = await t.context.h.client(ProjectService, t.context.alice).createProject({ name: "Shared key study", idempotencyKey: key });
  // Project names are unique across the hub, so Bob's differs; his key is the same.
  const bobs = await t.context.h.client(ProjectService, t.context.bob).createProject({ name: "Shared key study, Bob's", idempotencyKey: key });
  t.is(again.project!.id, alices.project!.id);
  t.not(bobs.project!.id, alices.project!.id);
  t.is(await count(t, "select 1 from project where name like 'Shared key study%'"), 2);
});

test("a cohort query submitted twice with one key is one query with one task per trust", async (t) => {
  const { project } = await t.context.h.client(ProjectService, t.context.alice).createProject({ name: "Retried query" });
  const cohorts = t.context.h.client(CohortService, t.context.alice);
  const key = crypto.randomUUID();
  const submit = () => cohorts.submitCohortQuery({ projectId: project!.id, sql: "select person_id from omop.person", idempotencyKey: key });
  const [a, b] = await Promise.all([submit(), submit()]);
  const c = await submit();
  t.is(b.query!.id, a.query!.id);
  t.is(c.query!.id, a.query!.id);
  t.is(await count(t, "select 1 from cohort_query where project_id = ?", [project!.id]), 1);
  t.is(await count(t, "select 1 from task where project_id = ?", [project!.id]), 1);
});

test("a model created again with its key but other settings is refused", async (t) => {
  const { project } = await t.context.h.client(ProjectService, t.context.alice).createProject({ name: "Model study" });
  const models = t.context.h.client(ModelService, t.context.alice);
  const key = crypto.randomUUID();
  const first = await models.createModel({ projectId: project!.id, name: "baseline", image: "flip/workload-numpy:1", idempotencyKey: key });
  const retry = await models.createModel({ projectId: project!.id, name: "baseline", image: "flip/workload-numpy:1", idempotencyKey: key });
  t.is(retry.model!.id, first.model!.id);
  const err = await refusal(models.createModel({ projectId: project!.id, name: "other", image: "flip/workload-numpy:1", idempotencyKey: key }));
  t.is(Code[err.code], Code[Code.AlreadyExists]);
});

test("a key is forgotten after its lifetime: the same request then creates again", async (t) => {
  const tasks = t.context.h.client(TaskService, t.context.admin);
  const key = crypto.randomUUID();
  const first = await tasks.createEchoTask({ trust: "north", message: "expiring", idempotencyKey: key });
  await t.context.h.hub.db.em().execute("update idempotency_key set created_at = now() - interval '25 hours' where key = ?", [key]);
  const later = await tasks.createEchoTask({ trust: "north", message: "expiring", idempotencyKey: key });
  t.not(later.task!.id, first.task!.id);
});

test("an over-long key is refused as invalid input", async (t) => {
  const err = await refusal(t.context.h.client(TaskService, t.context.admin).createEchoTask({ trust: "north", message: "long", idempotencyKey: "k".repeat(201) }));
  t.is(Code[err.code], Code[Code.InvalidArgument]);
  t.regex(err.rawMessage, /idempotency_key: must be at most 200 characters/);
});
