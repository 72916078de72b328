import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { lockStateDir, StateDirInUseError } from "./state-dir-lock.js";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "flip-state-lock-"));
}

/** The pid of a process that has already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "0"]);
  return child.pid!;
}

test("a second gateway on a state directory held by a live process is refused with who holds it", (t) => {
  const dir = tempDir();
  // The parent of this test process is alive for the whole test.
  const live = lockStateDir(dir, process.ppid);
  const err = t.throws(() => lockStateDir(dir), { instanceOf: StateDirInUseError });
  t.is(err.pid, process.ppid);
  t.regex(err.message, new RegExp(`another trust gateway \\(pid ${process.ppid}\\) is using .*; stop it first, or give this one its own FLIP_GATEWAY_STATE_DIR`));
  live.release();
});

test("a lock left by a process that died is taken over", (t) => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, "gateway.lock"), `${deadPid()}\n`);
  const lock = lockStateDir(dir);
  t.is(fs.readFileSync(lock.path, "utf8").trim(), String(process.pid));
  lock.release();
  t.false(fs.existsSync(lock.path), "released on stop");
});

test("the state directory is created when missing and can be locked again after release", (t) => {
  const dir = path.join(tempDir(), "nested", "state");
  lockStateDir(dir).release();
  const again = lockStateDir(dir);
  t.true(fs.existsSync(again.path));
  again.release();
});
