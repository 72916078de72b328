import pg from "pg";
import { ImagingService } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { createDataAccessClient } from "@flip/data-access/client.js";
import { requireInternalKey } from "@flip/shared/auth/internal-key.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { closePool } from "@flip/shared/postgres/close-pool.js";
import { watchDatabaseHealth } from "@flip/shared/postgres/database-health.js";
import { serve } from "@flip/shared/server/serve.js";
import { startMetrics, type ServiceMetrics } from "@flip/shared/telemetry/metrics.js";
import { ensureImagingSchema } from "./catalog/schema.js";
import type { ImagingConfig } from "./config.js";
import { imagingRoutes } from "./connect.js";
import { ImportWorker } from "./imports/import-worker.js";
import { loadOrCreatePseudonymKey } from "./keys/pseudonym-key.js";
import { ImagingMetrics } from "./imports/import-metrics.js";
import { createPacsClient } from "./pacs/pacs-config.js";
import { ProjectImaging } from "./project-imaging.js";
import { orthancResearchStore } from "./store/orthanc-store.js";

export interface RunningImaging {
  url: string;
  port: number;
  imaging: ProjectImaging;
  /** The Prometheus scrape URL (FLIP_METRICS_ADDR); undefined when metrics are off. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

/**
 * Starts the imaging service: prepares its index, loads (or makes) the trust's pseudonym key, checks the
 * research store answers, resumes interrupted imports, and serves ImagingService to the trust's gateway.
 */
export async function startImaging(config: ImagingConfig, log: Logger): Promise<RunningImaging> {
  const db = new pg.Pool({ connectionString: config.databaseUrl, max: 5 + config.pacing.concurrency, application_name: "flip-imaging" });
  db.on("error", (err) => log.warn({ err: { name: err.name } }, "idle database connection lost"));
  const pacs = createPacsClient(config.pacs, log);
  let worker: ImportWorker | undefined;
  let metrics: ServiceMetrics | undefined;
  try {
    metrics = await startMetrics(config.metrics, log);
    await ensureImagingSchema(db);
    const key = await loadOrCreatePseudonymKey(config.pseudonymKeyFile);
    const store = orthancResearchStore(config.store);
    await store.ping();
    const dataAccess = createDataAccessClient({ baseUrl: config.dataAccessUrl, internalKey: config.internalKey });
    worker = new ImportWorker({ db, pacs, store, key, dataDir: config.dataDir, pacing: config.pacing, log }, new ImagingMetrics(metrics.meter));
    const imaging = new ProjectImaging({ db, dataAccess, store, worker, dataDir: config.dataDir, log });
    await worker.start();
    const server = await serve({
      host: config.host,
      port: config.port,
      services: [ImagingService],
      routes: imagingRoutes(imaging, pacs, log),
      log,
      interceptors: [requireInternalKey(config.internalKey, ImagingService)],
      meter: metrics.meter,
    });
    log.info({ url: server.url, pacs: pacs.description, store: store.description, window: config.pacing.window?.text ?? "always", concurrency: config.pacing.concurrency }, "imaging listening");
    const databaseHealth = watchDatabaseHealth({ databaseUrl: config.databaseUrl, health: server.health, log });
    const running = worker;
    const serviceMetrics = metrics;
    let closing: Promise<void> | undefined;
    return {
      url: server.url,
      port: server.port,
      imaging,
      metricsUrl: serviceMetrics.url,
      close() {
        closing ??= (async () => {
          await databaseHealth.stop();
          await server.close();
          await running.stop();
          await pacs.close();
          await closePool(db);
          await serviceMetrics.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    await worker?.stop().catch(() => undefined);
    await metrics?.close();
    await pacs.close().catch(() => undefined);
    await closePool(db).catch(() => undefined);
    throw e;
  }
}
