import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { TaskResultSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { FileResultStore } from "./result-store.js";

const log = createLogger({ service: "test", level: "silent" });
const taskId = "0b6f8a9e-3c1d-4e2f-8a7b-9c0d1e2f3a4b";

test("a stored result survives a restart until the hub acknowledges it", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "results-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = new FileResultStore(dir, log);
  first.put(create(TaskResultSchema, { taskId, attempt: 2, outcome: { case: "output", value: { kind: { case: "echo", value: { message: "hi", trustCode: "gstt" } } } } }));
  const afterRestart = new FileResultStore(dir, log);
  const [r] = afterRestart.all();
  t.is(r?.taskId, taskId);
  t.is(r?.attempt, 2);
  t.is(r?.outcome.case, "output");
  afterRestart.remove(taskId);
  t.deepEqual(new FileResultStore(dir, log).all(), []);
  t.deepEqual(readdirSync(dir), []);
});
