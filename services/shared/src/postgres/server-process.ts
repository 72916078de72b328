import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Logger } from "../logging/logger.js";
import { ownedServer } from "../process/own-process-group.js";
import { EmbeddedPostgresError } from "./embedded-postgres-error.js";
import type { ServerUser } from "./server-user.js";

export interface ServerProcessOptions {
  /** Holds bin/, lib/, share/. */
  serverDir: string;
  /** The real data directory (no symlink in between). */
  dataDir: string;
  user: ServerUser | undefined;
  log: Logger;
}

/** The server's messages are matched on; and under root a cwd that `postgres` can enter. */
function spawnOptions(user: ServerUser | undefined) {
  return {
    env: { ...process.env, LC_MESSAGES: "C" },
    stdio: ["ignore", "pipe", "pipe"] as ("ignore" | "pipe")[],
    ...(user ? { uid: user.uid, gid: user.gid, cwd: "/" } : {}),
  };
}

/** Creates a cluster in the empty `dataDir` whose superuser `postgres` has `password`. */
export async function initialiseCluster(opts: ServerProcessOptions, password: string): Promise<void> {
  // initdb reads the password from a file; this one is readable only by the user running initdb.
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-initdb-"));
  const pwfile = path.join(dir, "password");
  try {
    writeFileSync(pwfile, password + "\n", { mode: 0o600 });
    if (opts.user) {
      chownSync(dir, opts.user.uid, opts.user.gid);
      chownSync(pwfile, opts.user.uid, opts.user.gid);
    }
    const args = [`--pgdata=${opts.dataDir}`, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${pwfile}`, "--encoding=UTF8", "--locale=C"];
    const child = spawn(path.join(opts.serverDir, "bin", "initdb"), args, spawnOptions(opts.user));
    const output = collect(child);
    const code = await exited(child);
    if (code !== 0) throw new EmbeddedPostgresError(`initdb could not create the PostgreSQL data directory ${opts.dataDir}: ${lastLine(output())}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ServerProcess {
  /** Fast shutdown: ends sessions, then waits for the server to exit. */
  stop(): Promise<void>;
}

/** Starts `postgres` on loopback `port` and resolves once it accepts connections. */
export async function startServerProcess(opts: ServerProcessOptions, port: number): Promise<ServerProcess> {
  const args = [
    "-D", opts.dataDir,
    "-p", String(port),
    "-c", "listen_addresses=127.0.0.1",
    "-c", "max_connections=300",
    "-c", "fsync=off",
    "-c", "password_encryption=scram-sha-256",
    // A failing statement's text is researchers' SQL: keep it out of the server's log.
    "-c", "log_min_error_statement=panic",
  ];
  // Fast shutdown (SIGINT) when FLIP's process dies without stopping it.
  const server = ownedServer(path.join(opts.serverDir, "bin", "postgres"), args, "INT");
  const child = spawn(server.command, server.args, { ...spawnOptions(opts.user), detached: server.detached });
  const output = collect(child, (line) => opts.log.debug({ pg: line }, "postgres"));
  const exit = exited(child);
  let stopping = false;
  // If FLIP exits without stopping it, the server must not outlive it.
  const onExit = () => child.kill("SIGINT");
  process.on("exit", onExit);
  try {
    const ready = await Promise.race([
      new Promise<true>((resolve) => child.stderr!.on("data", () => output().includes("database system is ready to accept connections") && resolve(true))),
      exit.then(() => false as const),
    ]);
    if (!ready) throw new EmbeddedPostgresError(`PostgreSQL did not start in ${opts.dataDir}: ${lastLine(output())}`);
  } catch (e) {
    process.off("exit", onExit);
    throw e;
  }
  exit.then((code) => {
    process.off("exit", onExit);
    if (!stopping) opts.log.warn({ code, dataDir: opts.dataDir }, "embedded PostgreSQL exited");
  }, () => undefined);
  return {
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exit;
    },
  };
}

/** Keeps the last few KiB of a child's output, passing each line to `onLine`. */
function collect(child: ChildProcess, onLine?: (line: string) => void): () => string {
  let text = "";
  const take = (chunk: Buffer) => {
    const s = chunk.toString("utf8");
    text = (text + s).slice(-8192);
    if (onLine) for (const line of s.split("\n")) if (line.trim()) onLine(line.trim());
  };
  child.stdout?.on("data", take);
  child.stderr?.on("data", take);
  return () => text;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve, reject) => {
    child.once("error", (e) => reject(new EmbeddedPostgresError(`could not run ${child.spawnfile}: ${e.message}`, { cause: e })));
    child.once("exit", (code) => resolve(code));
  });
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.findLast((l) => /FATAL|ERROR|error|could not/.test(l)) ?? lines.at(-1) ?? "no output";
}
