import { mkdtemp, readFile, stat } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { BundlePathError, bundleFilePath, JobWorkspace, updateArtifactId } from "./workspace.js";

const JOB = "0d6f4b9e-5a1c-4c3e-9a52-1f1e2d3c4b5a";

async function workspace(): Promise<JobWorkspace> {
  const ws = new JobWorkspace(await mkdtemp(path.join(os.tmpdir(), "flip-ws-")), JOB);
  await ws.ensure();
  return ws;
}

test("bundle paths must be plain relative paths", (t) => {
  t.is(bundleFilePath("train.py"), "train.py");
  t.is(bundleFilePath("pkg/model.py"), path.join("pkg", "model.py"));
  for (const bad of ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a\u0000b"]) {
    t.throws(() => bundleFilePath(bad), { instanceOf: BundlePathError }, bad);
  }
});

test("a bundle is unpacked readable by the workload, and one with an escaping path is refused whole", async (t) => {
  const ws = await workspace();
  const enc = new TextEncoder();
  await ws.unpackBundle("a1", [
    { path: "train.py", content: enc.encode("print('hi')") },
    { path: "pkg/model.py", content: enc.encode("x = 1") },
  ]);
  t.true(await ws.hasBundle("a1"));
  t.false(await ws.hasBundle("a2"));
  t.is(await readFile(path.join(ws.bundleDir, "pkg", "model.py"), "utf8"), "x = 1");
  t.is((await stat(path.join(ws.bundleDir, "pkg", "model.py"))).mode & 0o777, 0o644);
  t.is((await stat(path.join(ws.bundleDir, "pkg"))).mode & 0o777, 0o755);
  await t.throwsAsync(ws.unpackBundle("a3", [{ path: "ok.py", content: enc.encode("") }, { path: "../../escape.py", content: enc.encode("") }]), { instanceOf: BundlePathError, message: /escape\.py/ });
  await t.throwsAsync(ws.unpackBundle("a4", [{ path: "a", content: enc.encode("") }, { path: "a/b", content: enc.encode("") }]), { instanceOf: BundlePathError, message: /clashes/ });
  t.false(await ws.hasBundle("a3"));
});

test("the token is created once, kept private, and read back by a restarted gateway", async (t) => {
  const ws = await workspace();
  const token = await ws.token();
  t.regex(token, /^[A-Za-z0-9_-]{43}$/);
  t.is((await stat(path.join(ws.dir, "token"))).mode & 0o777, 0o600);
  t.is(await new JobWorkspace(path.dirname(ws.dir), JOB).token(), token);
});

test("the workload may enter the runtime directory and owns its scratch directory", async (t) => {
  const ws = await workspace();
  t.is((await stat(ws.runtimeDir)).mode & 0o777, 0o755);
  const scratch = await stat(ws.scratchDir);
  if (process.getuid?.() === 0) t.is(scratch.uid, 65534);
  else t.is(scratch.mode & 0o777, 0o777);
});

test("rounds done are recorded on disk and read back", async (t) => {
  const ws = await workspace();
  await ws.markRoundDone(1, { samples: 120n, evaluated: false });
  await ws.markRoundDone(2, { samples: 0n, evaluated: true });
  const done = await new JobWorkspace(path.dirname(ws.dir), JOB).roundsDone();
  t.deepEqual(done.get(1), { samples: 120n, evaluated: false });
  t.deepEqual(done.get(2), { samples: 0n, evaluated: true });
  t.is(done.get(3), undefined);
});

test("a job id that could leave the state directory is refused", (t) => {
  t.throws(() => new JobWorkspace("/tmp", "../x"));
  t.throws(() => new JobWorkspace("/tmp", ""));
});

test("an update's artifact id is a UUID that depends only on job, trust and round", (t) => {
  const id = updateArtifactId(JOB, "north", 2);
  t.regex(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(updateArtifactId(JOB, "north", 2), id);
  t.not(updateArtifactId(JOB, "north", 3), id);
  t.not(updateArtifactId(JOB, "south", 2), id);
});
