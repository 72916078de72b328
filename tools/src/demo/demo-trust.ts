import { randomBytes } from "node:crypto";
import * as path from "node:path";
import pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import { startEmbeddedPostgres } from "@flip/shared/postgres/embedded.js";
import { readDataAccessConfig } from "@flip/data-access/config.js";
import { startDataAccess } from "@flip/data-access/data-access.js";
import { createDataAccessClient } from "@flip/data-access/client.js";
import { createImagingClient } from "@flip/imaging/client.js";
import { readGatewayConfig } from "@flip/trust-gateway/config.js";
import { startGateway, taskLogPath, type RunningGateway } from "@flip/trust-gateway/gateway.js";
import { FileTaskLog } from "@flip/trust-gateway/tasks/task-log.js";
import { startTraining } from "@flip/trust-gateway/training/start-training.js";
import { trustTaskHandlers } from "@flip/trust-gateway/tasks/registry.js";
import { grpcHealthProbe } from "@flip/trust-gateway/health/data-access-probe.js";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { startDemoImaging, type RunningDemoImaging } from "./demo-imaging.js";
import type { DemoState } from "./demo-state.js";
import type { DemoTrust } from "./demo-trusts.js";
import type { OrderedShutdown } from "./shutdown.js";

export interface RunningDemoTrust {
  code: string;
  gateway: RunningGateway;
  dataAccessUrl: string;
  /** The trust's PACS, research store and imaging service, when the demo runs imaging. */
  imaging: RunningDemoImaging | undefined;
}

async function personCount(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string }>("select count(*) as n from omop.person");
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0;
  } finally {
    await c.end();
  }
}

/**
 * One trust on this machine, as a hospital would run it: its own PostgreSQL server with an OMOP
 * database (synthetic, seeded, loaded once), its data-access service, and its gateway dialling the hub.
 * Each part is added to `shutdown` as soon as it runs, so a start that fails half-way stops what started.
 */
export async function startDemoTrust(opts: {
  trust: DemoTrust;
  hubUrl: string;
  apiKey: string;
  dir: string;
  state: DemoState;
  log: Logger;
  /** The Docker engine training workloads run on (DOCKER_HOST form); no training without it. */
  dockerHost?: string;
  /** Give the trust a PACS, a research store and the imaging service (needs Debian's orthanc and dcm2niix). */
  imaging?: boolean;
  say?: (line: string) => void;
  shutdown: OrderedShutdown;
}): Promise<RunningDemoTrust> {
  const { trust, log, shutdown } = opts;
  const tlog = log.child({ trust: trust.code });
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(opts.dir, "postgres"), port: 0, databases: ["omop", "imaging"], log: tlog });
  shutdown.add("databases", `PostgreSQL of ${trust.code}`, () => postgres.stop());
  const ownerUrl = postgres.urlFor("omop");
  if ((await personCount(ownerUrl)) === 0) {
    tlog.info({ persons: trust.persons }, "loading synthetic OMOP data");
    await generateOmop(ownerUrl, { seed: trust.seed, persons: trust.persons, profile: trust.profile });
  }
  let internalKey = opts.state.read(`trusts/${trust.code}.internal-key`);
  if (!internalKey) {
    internalKey = randomBytes(24).toString("base64url");
    opts.state.write(`trusts/${trust.code}.internal-key`, internalKey);
  }
  const dataAccess = await startDataAccess(
    readDataAccessConfig({ FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0", FLIP_DATA_ACCESS_DATABASE_URL: ownerUrl, FLIP_TRUST_INTERNAL_KEY: internalKey, FLIP_LOG_LEVEL: process.env.FLIP_LOG_LEVEL ?? "warn" }),
    tlog,
  );
  shutdown.add("services", `data-access at ${trust.code}`, () => dataAccess.close());
  const gatewayConfig = readGatewayConfig({
    FLIP_HUB_URL: opts.hubUrl,
    FLIP_TRUST_CODE: trust.code,
    FLIP_TRUST_KEY: opts.apiKey,
    FLIP_GATEWAY_STATE_DIR: path.join(opts.dir, "gateway"),
    FLIP_GATEWAY_GPUS: process.env.FLIP_GATEWAY_GPUS ?? "auto",
    FLIP_GATEWAY_HEALTH_INTERVAL_MS: "5000",
    ...(opts.dockerHost ? { FLIP_TRAINING: "on", FLIP_TRAINING_IMAGES: "flip/*" } : {}),
  });
  const dataAccessClient = createDataAccessClient({ baseUrl: dataAccess.url, internalKey });
  const imaging = opts.imaging
    ? await startDemoImaging({
        dir: opts.dir,
        trustCode: trust.code,
        seed: trust.seed,
        omopUrl: ownerUrl,
        imagingDbUrl: postgres.urlFor("imaging"),
        dataAccessUrl: dataAccess.url,
        internalKey,
        log: tlog,
        say: opts.say ?? (() => undefined),
      })
    : undefined;
  if (imaging) shutdown.add("services", `imaging at ${trust.code} (imaging service, PACS, research store)`, () => imaging.close());
  const imagingClient = imaging ? createImagingClient({ baseUrl: imaging.imagingUrl, internalKey }) : undefined;
  const taskLog = new FileTaskLog(taskLogPath(gatewayConfig.stateDir));
  const training = gatewayConfig.training
    ? await startTraining(
        { ...gatewayConfig, training: gatewayConfig.training },
        { log: tlog, taskLog, dataAccess: dataAccessClient, imaging: imagingClient, env: { ...process.env, DOCKER_HOST: opts.dockerHost } },
      )
    : undefined;
  if (training) {
    shutdown.add("workloads", `training workloads at ${trust.code}`, async () => {
      await training.close();
      const stopped = await training.stopContainers();
      return stopped === 0 ? "none running" : `${stopped} container${stopped === 1 ? "" : "s"} stopped`;
    });
  }
  const gateway = await startGateway(gatewayConfig, tlog, {
    handlers: trustTaskHandlers({ dataAccess: dataAccessClient, imaging: imagingClient, training: training?.workloads }),
    probes: [grpcHealthProbe("data-access", dataAccess.url), ...(imaging ? [grpcHealthProbe("imaging", imaging.imagingUrl)] : [])],
    taskLog,
  });
  shutdown.add("gateways", `gateway ${trust.code}`, () => gateway.close());
  return { code: trust.code, gateway, dataAccessUrl: dataAccess.url, imaging };
}
