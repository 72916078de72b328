/**
 * `flip project create`, `flip cohort query` and `flip task echo` against in-process fakes: each sends a
 * fresh idempotency key and, when the hub drops the call, retries once with the same key, so a lost
 * answer never becomes a second project, query or task.
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { runCliCaptured } from "../run-captured.js";
import { serveFakeHub } from "../testing/fake-hub.js";

const test = anyTest as TestFn<{ dir: string }>;

test.beforeEach((t) => {
  t.context.dir = mkdtempSync(path.join(os.tmpdir(), "flip-cli-create-"));
});
test.afterEach.always((t) => rmSync(t.context.dir, { recursive: true, force: true }));

const ID = "33333333-3333-4333-8333-333333333333";

/** Keys the fake saw, in order; it drops the first call as a lost connection would. */
function droppingFirst<T>(keys: string[], answer: T): (req: { idempotencyKey: string }) => T {
  return (req) => {
    keys.push(req.idempotencyKey);
    if (keys.length === 1) throw new ConnectError("connection reset", Code.Unavailable);
    return answer;
  };
}

async function assertRetriedOnceWithOneKey(t: ExecutionContext<{ dir: string }>, routes: (router: ConnectRouter, keys: string[]) => void, argv: string[]) {
  const keys: string[] = [];
  const env = await serveFakeHub(t, (router) => routes(router, keys));
  const run = await runCliCaptured(argv, env);
  t.is(run.code, 0, run.err);
  t.is(keys.length, 2);
  t.regex(keys[0]!, /^[0-9a-f-]{36}$/);
  t.is(keys[1], keys[0]);
  t.regex(run.err, /retrying once with the same idempotency key/);
  // A second invocation is a new request: it gets a key of its own.
  const again = await runCliCaptured(argv, env);
  t.is(again.code, 0, again.err);
  t.not(keys[2], keys[0]);
}

test("project create retries a dropped call once with the same idempotency key", async (t) => {
  await assertRetriedOnceWithOneKey(
    t,
    (router, keys) => router.service(ProjectService, { createProject: droppingFirst(keys, { project: { id: ID, name: "Study" } }) }),
    ["project", "create", "--name", "Study"],
  );
});

test("cohort query retries a dropped submission once with the same idempotency key", async (t) => {
  await assertRetriedOnceWithOneKey(
    t,
    (router, keys) => router.service(CohortService, { submitCohortQuery: droppingFirst(keys, { query: { id: ID, projectId: "p1", complete: true } }) }),
    ["cohort", "query", "--project", "p1", "--sql", "select person_id from omop.person", "--no-wait"],
  );
});

test("task echo retries a dropped call once with the same idempotency key", async (t) => {
  await assertRetriedOnceWithOneKey(
    t,
    (router, keys) => router.service(TaskService, { createEchoTask: droppingFirst(keys, { task: { id: ID, trustCode: "north" } }) }),
    ["task", "echo", "--trust", "north"],
  );
});
