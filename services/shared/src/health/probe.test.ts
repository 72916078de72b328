import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import test from "ava";
import { createLogger } from "../logging/logger.js";
import { serve } from "../server/serve.js";
import { ServingStatus } from "../server/health.js";
import { readHealthFile, writeHealthFile } from "./health-file.js";
import { probeUrl } from "./probe.js";

const log = createLogger({ service: "probe-test", level: "silent" });
const PROBE = path.join(import.meta.dirname, "probe.ts");
const dir = mkdtempSync(path.join(os.tmpdir(), "flip-probe-"));

/** Runs the probe as a container's health check does; resolves with its exit code and the line it printed. */
async function probe(...args: string[]): Promise<{ code: number; line: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", PROBE, ...args]);
    return { code: 0, line: stdout.trim() };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, line: err.stderr.trim() };
  }
}

test("grpc: exits 0 while the service is SERVING, 1 once it is not, naming what it found", async (t) => {
  const server = await serve({ host: "127.0.0.1", port: 0, services: [], routes: () => undefined, log });
  t.teardown(() => server.close(0));
  const serving = await probe("grpc", `127.0.0.1:${server.port}`);
  t.is(serving.code, 0, serving.line);
  server.health.setAll(ServingStatus.NOT_SERVING);
  const draining = await probe("grpc", `127.0.0.1:${server.port}`);
  t.is(draining.code, 1);
  t.regex(draining.line, /unhealthy: .* is NOT_SERVING/);
});

test("file: exits 0 for a fresh serving health file and 1 for a missing one", async (t) => {
  const file = path.join(dir, "linked.json");
  await writeHealthFile(file, { serving: true, detail: "linked to the hub" });
  t.like(await probe("file", file), { code: 0, line: "healthy: linked to the hub" });
  const missing = await probe("file", path.join(dir, "none.json"));
  t.is(missing.code, 1);
  t.regex(missing.line, /cannot read the health file .*ENOENT/);
});

test("a health file that says not serving, or was last written too long ago, is unhealthy", async (t) => {
  const file = path.join(dir, "states.json");
  await writeHealthFile(file, { serving: false, detail: "link waiting" });
  t.deepEqual(readHealthFile(file, 30_000), { serving: false, why: "link waiting" });
  await writeHealthFile(file, { serving: true, detail: "linked" }, new Date(Date.now() - 60_000));
  const stale = readHealthFile(file, 30_000);
  t.false(stale.serving);
  t.regex(stale.why, /is stale .*stuck or gone/);
});

test("a service listening on every interface is probed on loopback", (t) => {
  t.is(probeUrl("0.0.0.0:7770", false), "http://127.0.0.1:7770");
  t.is(probeUrl("[::]:7781", true), "https://[::1]:7781");
  t.is(probeUrl("hub:7770", false), "http://hub:7770");
  t.throws(() => probeUrl("7770", false), { message: /not a host:port/ });
});
