/**
 * `npm test`: starts one embedded PostgreSQL server for the whole run (each test file makes its own
 * database on it), runs ava with TAP output, and ends with the line `N passed, N failed`.
 * Arguments are passed to ava (e.g. a file path to run one file).
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { createLogger } from "@flip/shared/logging/logger.js";
import { startEmbeddedPostgres } from "@flip/shared/postgres/embedded.js";
import { passwordFileFor } from "@flip/shared/postgres/superuser-password.js";

const root = path.resolve(import.meta.dirname, "../../..");
const dataDir = path.join(root, ".tmp", `test-pg-${process.pid}`);
const removeData = (...dirs: string[]) => {
  for (const p of [...dirs, passwordFileFor(dataDir)]) rmSync(p, { recursive: true, force: true });
};
removeData(dataDir);
const log = createLogger({ service: "test-runner", level: "warn" });
const pgServer = await startEmbeddedPostgres({ dataDir, port: 0, databases: [], log }).catch((e: unknown) => {
  process.stderr.write(`npm test could not start PostgreSQL: ${e instanceof Error ? e.message : String(e)}\n`);
  return process.exit(1);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    ava.kill(signal);
    void pgServer.stop().finally(() => process.exit(130));
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;
const ava = spawn(process.execPath, [path.join(root, "node_modules/ava/entrypoints/cli.js"), "--tap", ...process.argv.slice(2)], {
  cwd: root,
  env: { ...process.env, FLIP_TEST_PG_URL: pgServer.urlFor("postgres"), OTEL_SDK_DISABLED: process.env.OTEL_SDK_DISABLED ?? "true" },
  stdio: ["ignore", "pipe", "inherit"],
});
const lines = createInterface({ input: ava.stdout });
lines.on("line", (line) => {
  process.stdout.write(line + "\n");
  if (/^ok \d+/.test(line)) {
    if (/# SKIP|# TODO/.test(line)) skipped++;
    else passed++;
  } else if (/^not ok \d+/.test(line)) {
    if (/# TODO/.test(line)) skipped++;
    else failed++;
  }
});
const code: number = await new Promise((resolve) => ava.on("close", (c) => resolve(c ?? 1)));
// The data may have been kept elsewhere (where the postgres OS user can reach it), with dataDir a link to it.
await pgServer.remove().catch(() => undefined);
if (code !== 0 && failed === 0) failed = 1;
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
process.exit(code === 0 ? 0 : 1);
