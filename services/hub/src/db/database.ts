import { MikroORM, type EntityManager } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import { entities } from "./entities.js";
import { migrations } from "./migrations/index.js";
import { Notifier } from "./notifier.js";

export type { EntityManager };

/** Arbitrary constant: the advisory lock two hubs take so only one migrates at a time. */
const MIGRATION_LOCK = 7_770_001;
/** How long closing the connection pool may take before the hub stops without it. */
const CLOSE_TIMEOUT_MS = 5_000;

export interface Database {
  orm: MikroORM;
  /** A fresh EntityManager for one unit of work. */
  em(): EntityManager;
  notifier: Notifier;
  close(): Promise<void>;
}

/** Applies pending migrations; safe when several hubs start at once (they queue on an advisory lock). */
export async function migrate(orm: MikroORM, databaseUrl: string, log: Logger): Promise<void> {
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    const applied = await orm.migrator.up();
    if (applied.length > 0) log.info({ migrations: applied.map((m) => m.name) }, "migrations applied");
  } finally {
    await lock.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
    await lock.end();
  }
}

export async function openDatabase(databaseUrl: string, log: Logger, poolMax = 20): Promise<Database> {
  const orm = await MikroORM.init({
    clientUrl: databaseUrl,
    entities,
    extensions: [Migrator],
    migrations: { migrationsList: migrations, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    // Opening a connection starts a PostgreSQL backend (milliseconds): connections opened for a burst stay
    // open for minutes rather than pg's default 10 s, so the next task does not pay for a new one.
    pool: { min: 2, max: poolMax, idleTimeoutMillis: 300_000 },
    debug: false,
    allowGlobalContext: false,
  });
  await migrate(orm, databaseUrl, log);
  const notifier = new Notifier(databaseUrl, log);
  await notifier.start();
  return {
    orm,
    em: () => orm.em.fork(),
    notifier,
    async close() {
      await notifier.stop();
      // A query still waiting on a server that went away can hold the pool's close for good: stopping must
      // not hang on it (the process is ending; the server drops the connections when it exits).
      let timer: NodeJS.Timeout | undefined;
      const closed = orm.close(true).then(() => "closed" as const);
      const outcome = await Promise.race([closed, new Promise<"timed out">((resolve) => (timer = setTimeout(() => resolve("timed out"), CLOSE_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (outcome === "timed out") log.warn({ timeoutMs: CLOSE_TIMEOUT_MS }, "database connections did not close in time; leaving them to the server");
    },
  };
}
