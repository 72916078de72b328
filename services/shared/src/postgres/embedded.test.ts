import { spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import test from "ava";
import pg from "pg";
import { createLogger } from "../logging/logger.js";
import { eventually } from "../testing/eventually.js";
import { writeClientAuthentication } from "./client-authentication.js";
import { freePort, startEmbeddedPostgres, type RunningPostgres } from "./embedded.js";
import { initialiseCluster, startServerProcess } from "./server-process.js";
import { LEGACY_PASSWORD, passwordFileFor } from "./superuser-password.js";
import { serverUser, userCan } from "./server-user.js";
import { SERVER_FILES_ROOT, packagedServerDir, prepareDataDir, reachableServerDir } from "./server-files.js";

// Each test starts its own server (initdb takes a few seconds): one at a time on a small machine.
const log = createLogger({ service: "embedded-postgres-test", level: "silent" });
const isRoot = process.getuid?.() === 0;

/** A scratch directory, removed after the test with any server started in it. */
function scratch(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-embedded-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function start(t: import("ava").ExecutionContext, dataDir: string, port = 0): Promise<RunningPostgres> {
  const server = await startEmbeddedPostgres({ dataDir, port, databases: ["app"], log });
  t.teardown(async () => {
    await server.stop();
    if (server.serverDataDir !== dataDir) rmSync(server.serverDataDir, { recursive: true, force: true });
  });
  return server;
}

/** The SQLSTATE a connection attempt fails with, or "connected". */
async function tryConnect(config: pg.ClientConfig): Promise<string> {
  const c = new pg.Client(config);
  try {
    await c.connect();
    return "connected";
  } catch (e) {
    return String((e as { code?: unknown }).code ?? (e as Error).message);
  } finally {
    await c.end().catch(() => undefined);
  }
}

test.serial("a new data directory gets its own random superuser password, kept 0600 beside it, and nothing else opens it", async (t) => {
  const dir = scratch(t);
  const a = await start(t, path.join(dir, "a"));
  const b = await start(t, path.join(dir, "b"));

  const file = passwordFileFor(path.join(dir, "a"));
  const st = statSync(file);
  t.is(st.mode & 0o777, 0o600);
  t.is(st.uid, process.getuid!());
  const password = readFileSync(file, "utf8").trim();
  t.true(password.length >= 32);
  t.not(password, readFileSync(passwordFileFor(path.join(dir, "b")), "utf8").trim(), "each data directory has its own password");
  t.is(new URL(a.urlFor("app")).password, password);
  t.is(await tryConnect({ connectionString: a.urlFor("app") }), "connected");
  t.is(await tryConnect({ connectionString: b.urlFor("app") }), "connected");

  // Without the file's password: neither the old fixed one over TCP nor any over the local socket (where
  // trust or peer authentication would let a local OS user in).
  t.is(await tryConnect({ host: "127.0.0.1", port: a.port, user: "postgres", password: LEGACY_PASSWORD, database: "app" }), "28P01");
  t.is(await tryConnect({ host: "/tmp", port: a.port, user: "postgres", password: "guess", database: "app" }), "28P01");
  t.is(await tryConnect({ host: "/tmp", port: a.port, user: "postgres", password: password, database: "app" }), "connected", "the socket itself works");
});

test.serial("a server whose owner process is killed without stopping it shuts down", async (t) => {
  const dir = scratch(t);
  const dataDir = path.join(dir, "orphan");
  const embedded = new URL("./embedded.ts", import.meta.url).pathname;
  const code = `
    const { startEmbeddedPostgres } = await import(${JSON.stringify(embedded)});
    const { createLogger } = await import(${JSON.stringify(new URL("../logging/logger.ts", import.meta.url).pathname)});
    const s = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: 0, databases: [], log: createLogger({ service: "t", level: "silent" }) });
    process.stdout.write(JSON.stringify({ url: s.urlFor("postgres"), dataDir: s.serverDataDir }) + "\\n");
    setInterval(() => undefined, 1000);
  `;
  const owner = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => owner.kill("SIGKILL"));
  const [line] = (await once(createInterface({ input: owner.stdout! }), "line")) as [string];
  const started = JSON.parse(line) as { url: string; dataDir: string };
  t.teardown(() => rmSync(started.dataDir, { recursive: true, force: true }));
  t.is(await tryConnect({ connectionString: started.url }), "connected");

  owner.kill("SIGKILL");
  await eventually(() => tryConnect({ connectionString: started.url }), (r) => r === "ECONNREFUSED", { timeoutMs: 30_000, what: "the server gone" });
  t.pass();
});

test.serial("a data directory made with the old fixed password keeps working and gets its own password", async (t) => {
  const dir = scratch(t);
  const dataDir = path.join(dir, "old");
  const first = await startEmbeddedPostgres({ dataDir, port: 0, databases: ["app"], log });
  // Make it what earlier versions left behind: the fixed password, plain `password` rules, no password file.
  const admin = new pg.Client({ connectionString: first.urlFor("postgres") });
  await admin.connect();
  await admin.query(`alter role postgres with password '${LEGACY_PASSWORD}'`);
  await admin.end();
  await first.stop();
  rmSync(passwordFileFor(dataDir));
  writeFileSync(path.join(first.serverDataDir, "pg_hba.conf"), "local all all password\nhost all all 127.0.0.1/32 password\n");

  const upgraded = await start(t, dataDir);
  const password = readFileSync(passwordFileFor(dataDir), "utf8").trim();
  t.not(password, LEGACY_PASSWORD);
  t.is(await tryConnect({ connectionString: upgraded.urlFor("app") }), "connected", "the data is still there");
  t.is(await tryConnect({ host: "127.0.0.1", port: upgraded.port, user: "postgres", password: LEGACY_PASSWORD, database: "app" }), "28P01");
  t.regex(readFileSync(path.join(upgraded.serverDataDir, "pg_hba.conf"), "utf8"), /^local\s+all\s+all\s+scram-sha-256$/m);
});

test.serial("as root, a data directory inside a directory the postgres OS user cannot enter works", async (t) => {
  if (!isRoot) {
    t.pass("only root runs the server as another OS user");
    return;
  }
  const dir = scratch(t); // mkdtemp makes it 0700, owned by root: like a clone under /root
  const user = serverUser()!;
  t.false(userCan(user, "x", dir), "the test's premise: postgres cannot enter the directory");
  const dataDir = path.join(dir, "hub", "postgres");

  const server = await start(t, dataDir);
  t.is(await tryConnect({ connectionString: server.urlFor("app") }), "connected");
  t.true(lstatSync(dataDir).isSymbolicLink(), "the data directory points to where the data is kept");
  t.true(server.serverDataDir.startsWith(SERVER_FILES_ROOT));
  await server.stop();

  const again = await start(t, dataDir);
  t.is(again.serverDataDir, server.serverDataDir, "the next start finds the same data");
  t.is(await tryConnect({ connectionString: again.urlFor("app") }), "connected");
});

test.serial("as root, binaries the postgres OS user cannot reach are run from a copy it can", async (t) => {
  if (!isRoot) {
    t.pass("only root runs the server as another OS user");
    return;
  }
  const user = serverUser()!;
  const dir = scratch(t);
  const packaged = await packagedServerDir();
  const hidden = path.join(dir, "pkg", "native");
  cpSync(path.join(packaged, "..", "package.json"), path.join(dir, "pkg", "package.json"));
  cpSync(packaged, hidden, { recursive: true, verbatimSymlinks: true });
  t.false(userCan(user, "x", path.join(hidden, "bin", "postgres")));

  const usable = reachableServerDir(hidden, user, log);
  t.true(usable.startsWith(SERVER_FILES_ROOT));
  t.true(userCan(user, "x", path.join(usable, "bin", "postgres")));
  t.true(userCan(user, "x", path.join(usable, "bin", "initdb")));

  // And the copy runs: a cluster made and served by its binaries, as the postgres user.
  const dataDir = prepareDataDir(path.join(dir, "data"), user, log);
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const opts = { serverDir: usable, dataDir, user, log };
  await initialiseCluster(opts, "a-password-for-this-test");
  writeClientAuthentication(dataDir);
  const port = await freePort();
  const server = await startServerProcess(opts, port);
  t.teardown(() => server.stop());
  t.is(await tryConnect({ host: "127.0.0.1", port, user: "postgres", password: "a-password-for-this-test", database: "postgres" }), "connected");
});
