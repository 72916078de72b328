import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { runCliCaptured } from "../run-captured.js";


test("an operator reads the trust's own task record without the hub, filtered by project", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-tasklog-"));
  const lines = [
    { at: "2026-11-22T10:00:00.000Z", event: "accepted", taskId: "t1", attempt: 1, kind: "cohort_query", projectId: "p1" },
    { at: "2026-11-22T10:00:01.000Z", event: "succeeded", taskId: "t1", attempt: 1, kind: "cohort_query", projectId: "p1", durationMs: 120 },
    { at: "2026-11-22T10:01:00.000Z", event: "failed", taskId: "t2", attempt: 1, kind: "cohort_query", projectId: "p2", error: { code: "INVALID", message: "rule" } },
  ];
  writeFileSync(path.join(dir, "tasks.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  const { code, out } = await runCliCaptured(["gateway", "log", "--state-dir", dir, "--project", "p1", "--json", "--hub", "http://127.0.0.1:1"]);
  t.is(code, 0);
  const { entries } = JSON.parse(out) as { entries: { taskId: string; event: string }[] };
  t.deepEqual(entries.map((e) => `${e.taskId}:${e.event}`), ["t1:accepted", "t1:succeeded"]);
});

test("a missing task log is a usage error that names where it looked", async (t) => {
  const { code, err } = await runCliCaptured(["gateway", "log", "--state-dir", "/nonexistent/flip"]);
  t.is(code, 2);
  t.regex(err, /no task log at \/nonexistent\/flip\/tasks\.jsonl/);
});
