import pg from "pg";
import type { Logger } from "../logging/logger.js";
import type { HealthRegistry } from "../server/health.js";

export interface DatabaseHealthOptions {
  databaseUrl: string;
  /** The server's health registry; every service in it follows the database. */
  health: HealthRegistry;
  log: Logger;
  /** How often to ask the database; default 2 s. */
  intervalMs?: number;
  /** How long an answer may take before the database counts as down; default 1 s. */
  timeoutMs?: number;
}

export interface DatabaseHealthCheck {
  /** Stops asking; waits for a check in flight, so none changes the registry afterwards. */
  stop(): Promise<void>;
}

/** The dependency name under which a down database is recorded in the health registry. */
export const DATABASE_DEPENDENCY = "postgres";

/**
 * Asks the database `select 1` every `intervalMs` and reports every service NOT_SERVING while it does
 * not answer within `timeoutMs`, SERVING again once it does. It uses its own single connection, so a
 * busy application pool cannot make a healthy database look down (or the reverse).
 */
export function watchDatabaseHealth(opts: DatabaseHealthOptions): DatabaseHealthCheck {
  const intervalMs = opts.intervalMs ?? 2_000;
  const timeoutMs = opts.timeoutMs ?? 1_000;
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: 1,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: "flip-health",
  });
  // A stopped server drops the idle connection; the next check notices and reports it.
  pool.on("error", () => undefined);
  let up = true;
  let stopped = false;
  let inFlight: Promise<void> | undefined;

  const check = async () => {
    let failure: string | undefined;
    try {
      await pool.query("select 1");
    } catch (e) {
      failure = e instanceof Error ? (("code" in e && typeof e.code === "string" ? e.code + " " : "") + e.message) : String(e);
    }
    if (stopped || (failure === undefined) === up) return;
    up = failure === undefined;
    opts.health.setDependency(DATABASE_DEPENDENCY, up);
    if (up) opts.log.info("database answers again: serving");
    else opts.log.warn({ reason: failure }, "database does not answer: not serving");
  };

  const timer = setInterval(() => {
    inFlight ??= check().finally(() => (inFlight = undefined));
  }, intervalMs);
  timer.unref();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
      await pool.end();
    },
  };
}
