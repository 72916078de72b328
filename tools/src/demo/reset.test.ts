import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { removeDemoState } from "./reset.js";

test("a reset removes the demo's state and the data its links point to, and keeps what it is told to", (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "flip-reset-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const demo = path.join(root, ".flip");
  const elsewhere = path.join(root, "postgres-data", "postgres-1234");
  mkdirSync(path.join(demo, "hub"), { recursive: true });
  mkdirSync(elsewhere, { recursive: true });
  writeFileSync(path.join(elsewhere, "PG_VERSION"), "18\n");
  symlinkSync(elsewhere, path.join(demo, "hub", "postgres"));
  writeFileSync(path.join(demo, "hub", "postgres.password"), "secret\n");
  symlinkSync(path.join(root, "gone"), path.join(demo, "dangling"));
  writeFileSync(path.join(demo, "npm-start.pid"), "1\n");

  removeDemoState(demo, ["npm-start.pid"]);

  t.false(existsSync(elsewhere), "the relocated database went with its link");
  t.false(existsSync(path.join(demo, "hub")));
  t.true(existsSync(path.join(demo, "npm-start.pid")), "the lock stays");
  t.true(existsSync(path.join(root, "postgres-data")), "nothing above the linked data is touched");
  t.notThrows(() => removeDemoState(path.join(root, "missing")), "a missing demo directory is nothing to reset");
});
