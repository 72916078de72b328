import pg from "pg";
import { DataAccessService } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { closePool } from "@flip/shared/postgres/close-pool.js";
import { watchDatabaseHealth } from "@flip/shared/postgres/database-health.js";
import { serve } from "@flip/shared/server/serve.js";
import { startMetrics, type ServiceMetrics } from "@flip/shared/telemetry/metrics.js";
import { requireInternalKey } from "@flip/shared/auth/internal-key.js";
import type { CohortDeps } from "./cohorts/deps.js";
import { ensureLocalSchema } from "./cohorts/frozen-store.js";
import { LOCAL_SCHEMA } from "./cohorts/local-store.js";
import { QueryGuard } from "./cohorts/query-guard.js";
import type { DataAccessConfig } from "./config.js";
import { dataAccessRoutes } from "./connect.js";
import { createReaderPool, ReadOnlyExecutor } from "./execution/executor.js";
import { assertReaderIsReadOnly, provisionReader } from "./execution/reader-role.js";
import { DataAccessMetrics } from "./metrics.js";

export interface RunningDataAccess {
  url: string;
  port: number;
  /** The Prometheus scrape URL (FLIP_METRICS_ADDR); undefined when metrics are off. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * Starts the data-access service: prepares flip_local, provisions the reader role when no reader URL is
 * configured, refuses to start if the reader can do more than read omop, and serves DataAccessService.
 */
export async function startDataAccess(config: DataAccessConfig, log: Logger): Promise<RunningDataAccess> {
  const owner = new pg.Pool({ connectionString: config.databaseUrl, max: 5, application_name: "flip-data-access-owner" });
  owner.on("error", (err) => log.warn({ err: { name: err.name } }, "idle owner connection lost"));
  let reader: pg.Pool | undefined;
  let metrics: ServiceMetrics | undefined;
  try {
    metrics = await startMetrics(config.metrics, log);
    await ensureLocalSchema(owner);
    const readerUrl = config.readerUrl ?? (await provisionReader(owner, config.databaseUrl));
    reader = createReaderPool(readerUrl);
    await assertReaderIsReadOnly(reader, LOCAL_SCHEMA);

    const src = config.policy.source;
    log.info(
      {
        policyFile: src?.path ?? null,
        policySha256: src?.sha256 ?? null,
        rules: config.policy.rules.length,
        threshold: config.threshold,
        queryBudgetPerDay: config.policy.queryBudgetPerDay,
      },
      src ? "trust policy loaded" : "no trust policy file: every action permitted",
    );
    const deps: CohortDeps = {
      executor: new ReadOnlyExecutor(reader, { statementTimeoutMs: config.statementTimeoutMs, maxRows: config.maxRows }),
      owner,
      policy: config.policy,
      threshold: config.threshold,
      guard: new QueryGuard(owner, { perDay: config.policy.queryBudgetPerDay }),
      log,
    };
    const server = await serve({
      host: config.host,
      port: config.port,
      services: [DataAccessService],
      routes: dataAccessRoutes(deps, new DataAccessMetrics(metrics.meter)),
      log,
      meter: metrics.meter,
      interceptors: [requireInternalKey(config.internalKey, DataAccessService)],
    });
    log.info({ url: server.url }, "data-access listening");
    const databaseHealth = watchDatabaseHealth({ databaseUrl: config.databaseUrl, health: server.health, log });
    const readerPool = reader;
    const serviceMetrics = metrics;
    return {
      url: server.url,
      port: server.port,
      metricsUrl: serviceMetrics.url,
      async close() {
        await databaseHealth.stop();
        await server.close();
        await closePool(readerPool);
        await closePool(owner);
        await serviceMetrics.close();
      },
    };
  } catch (e) {
    await metrics?.close();
    if (reader) await closePool(reader).catch(() => undefined);
    await closePool(owner).catch(() => undefined);
    throw e;
  }
}

