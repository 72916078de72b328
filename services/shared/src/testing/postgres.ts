import { randomBytes } from "node:crypto";
import * as os from "node:os";
import * as path from "node:path";
import pg from "pg";
import { createLogger } from "../logging/logger.js";
import { startEmbeddedPostgres, type RunningPostgres } from "../postgres/embedded.js";

/**
 * A fresh database on a real PostgreSQL server for one test file.
 * `npm test` starts one embedded server for the whole run and passes its admin URL in FLIP_TEST_PG_URL;
 * without it (running one file by hand) an embedded server is started for this process.
 */
export interface TestDatabase {
  url: string;
  name: string;
  /** Admin URL of the server (superuser), for creating more databases or roles. */
  serverUrl: string;
  drop(): Promise<void>;
}

let ownServer: Promise<RunningPostgres> | undefined;

async function serverAdminUrl(): Promise<string> {
  const shared = process.env.FLIP_TEST_PG_URL;
  if (shared) return shared;
  ownServer ??= startEmbeddedPostgres({
    dataDir: path.join(os.tmpdir(), `flip-test-pg-${process.pid}`),
    port: 0,
    databases: [],
    log: createLogger({ service: "test-postgres", level: "warn" }),
  });
  return (await ownServer).urlFor("postgres");
}

export async function createTestDatabase(prefix = "t"): Promise<TestDatabase> {
  const serverUrl = await serverAdminUrl();
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    serverUrl,
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        // A pool's end() resolves once its clients were told to close, not once their backends are gone.
        // Forcing the drop while one is still closing makes its client emit an unhandled error (and the
        // test process exit), so give them a moment; force only what is left after that.
        for (let waited = 0; waited < 5_000; waited += 50) {
          const { rows } = await c.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where datname = $1", [name]);
          if (rows[0]!.n === 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Stops the per-process embedded server, when this process started one. */
export async function stopOwnTestServer(): Promise<void> {
  const s = ownServer;
  ownServer = undefined;
  if (s) await (await s).stop();
}
