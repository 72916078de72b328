import * as path from "node:path";
import type { Logger } from "@flip/shared/logging/logger.js";
import { watchDatabaseHealth } from "@flip/shared/postgres/database-health.js";
import { startEmbeddedPostgres, type RunningPostgres } from "@flip/shared/postgres/embedded.js";
import { serve, type RunningServer } from "@flip/shared/server/serve.js";
import { startMetrics } from "@flip/shared/telemetry/metrics.js";
import { adminModule } from "./admin/module.js";
import { artifactModule } from "./artifacts/module.js";
import { auditModule } from "./audit/module.js";
import { authenticationInterceptor, bootstrapTokenResolver, requireCredentialHeader } from "./auth/authenticate.js";
import { hubServices, policies } from "./auth/policies.js";
import { cohortModule } from "./cohorts/module.js";
import { consoleWeb } from "./console/console-web.js";
import type { HubConfig } from "./config.js";
import { hubRoutes } from "./connect.js";
import { openDatabase, type Database } from "./db/database.js";
import type { HubModule } from "./hub-module.js";
import { identityModule, type IdentityModule } from "./identity/module.js";
import { imagingModule } from "./imaging/module.js";
import { linkModule } from "./link/module.js";
import { observeDatabaseGauges } from "./metrics/database-gauges.js";
import { HubMetrics } from "./metrics/hub-metrics.js";
import { projectModule } from "./projects/module.js";
import type { HubDeps } from "./rpc/hub-context.js";
import { tasksModule } from "./tasks/module.js";
import { trainingModule } from "./training/module.js";
import { trustModule } from "./trusts/module.js";

export interface RunningHub {
  url: string;
  port: number;
  db: Database;
  server: RunningServer;
  /** The Prometheus scrape URL (FLIP_METRICS_ADDR); undefined when metrics are off. */
  metricsUrl: string | undefined;
  /** Stops serving and closes the database pool; an embedded PostgreSQL server keeps running until close(). */
  closeServer(): Promise<void>;
  /** closeServer(), then stops the embedded PostgreSQL server (when the hub started one). */
  close(): Promise<void>;
}

/** The hub's domains, in start order. */
function hubModules(deps: HubDeps, identity: IdentityModule): HubModule[] {
  const tasks = tasksModule(deps);
  const training = trainingModule(deps, tasks.events);
  const imaging = imagingModule(deps, tasks.events);
  return [
    // First, so it is listening before any other module appends to the audit log; stopped last.
    auditModule(deps),
    identity,
    trustModule(deps),
    tasks,
    projectModule(deps, tasks.events),
    adminModule(deps),
    cohortModule(deps, tasks.events),
    imaging,
    linkModule(deps, {
      trainingReports: (trustId, taskId, report) => training.storeLiveReport(trustId, taskId, report),
      imagingProgress: (trustId, taskId, counts) => imaging.storeProgress(trustId, taskId, counts),
    }),
    artifactModule(deps),
    training,
  ];
}

/** The modules' direct routes; each must authenticate its caller itself, since interceptors do not run for it. */
function directRoutes(modules: HubModule[]) {
  const routes = modules.flatMap((m) => m.direct?.() ?? []);
  for (const r of routes) {
    const rpc = `${r.method.parent.typeName}/${r.method.name}`;
    if (policies[rpc] !== "trust-key") throw new Error(`${rpc} cannot be a direct route: only trust-key RPCs authenticate their caller themselves`);
  }
  return routes;
}

/** Starts a hub: metrics endpoint (when configured), database (external or embedded), migrations, modules, then the one-port server. */
export async function startHub(config: HubConfig, log: Logger): Promise<RunningHub> {
  // First, so a metrics address that is taken stops the start before anything else opens.
  const metrics = await startMetrics(config.metrics, log);
  let embedded: RunningPostgres | undefined;
  let databaseUrl = config.databaseUrl;
  let db: Database;
  try {
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, "postgres"), port: config.embeddedPostgresPort, databases: ["flip"], log });
      databaseUrl = embedded.urlFor("flip");
    }
    db = await openDatabase(databaseUrl, log);
  } catch (e) {
    await embedded?.stop();
    await metrics.close();
    throw e;
  }
  observeDatabaseGauges(metrics.meter, { db, offlineAfterMs: config.offlineAfterMs, log });
  const deps: HubDeps = { db, config, log, metrics: new HubMetrics(metrics.meter) };
  const identity = identityModule(deps);
  const modules = hubModules(deps, identity);
  const started: HubModule[] = [];
  try {
    for (const m of modules) {
      await m.start?.();
      started.push(m);
    }
  } catch (e) {
    // A module that cannot start (e.g. the wrong secrets key) stops the hub; close what was opened.
    for (const m of started.reverse()) await m.stop?.().catch(() => undefined);
    await db.close();
    await embedded?.stop();
    await metrics.close();
    throw e;
  }
  const server = await serve({
    host: config.host,
    port: config.port,
    services: hubServices,
    routes: hubRoutes(modules),
    direct: directRoutes(modules),
    // Small for every RPC but those that carry payloads; the header check refuses a call without a
    // credential before any of its body is read.
    readMaxBytes: 1024 * 1024,
    readMaxBytesFor: {
      // A model's files (32 MiB) and initial weights (64 MiB) arrive in one CreateModel message.
      "flip.hub.v1.ModelService/CreateModel": 100 * 1024 * 1024,
      // Upload chunks (at most 4 MiB) and the link's messages keep the cap they had.
      "flip.link.v1.ArtifactService/Upload": 16 * 1024 * 1024,
      "flip.link.v1.LinkService/Connect": 16 * 1024 * 1024,
    },
    checkHeaders: requireCredentialHeader,
    log,
    interceptors: [authenticationInterceptor(identity.resolvers(bootstrapTokenResolver(config.adminToken)), log), ...identity.interceptors],
    tls: config.tls,
    meter: metrics.meter,
    web: consoleWeb({ config: config.console, tls: Boolean(config.tls), connectOrigins: () => identity.signInOptions.connectOrigins(), log }),
  });
  log.info({ url: server.url, instance: config.instanceId, embeddedPostgres: Boolean(embedded) }, "hub listening");
  const databaseHealth = watchDatabaseHealth({ databaseUrl, health: server.health, log });
  let closingServer: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const closeServer = () =>
    (closingServer ??= (async () => {
      await databaseHealth.stop();
      // First: a scrape while the database closes would only log that it cannot read the counts.
      await metrics.close();
      await server.close();
      for (const m of [...modules].reverse()) await m.stop?.();
      await db.close();
    })());
  return {
    url: server.url,
    port: server.port,
    db,
    server,
    metricsUrl: metrics.url,
    closeServer,
    close: () =>
      (closing ??= (async () => {
        await closeServer();
        await embedded?.stop();
      })()),
  };
}
