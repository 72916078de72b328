/**
 * The trust gateway process: `node --import tsx services/trust-gateway/src/main.ts` with FLIP_HUB_URL,
 * FLIP_TRUST_CODE and FLIP_TRUST_KEY (and FLIP_DATA_ACCESS_URL + FLIP_TRUST_INTERNAL_KEY for cohort work,
 * FLIP_TRAINING=on and the FLIP_TRAINING_* policy for training). Exit codes: 0 stopped by a signal, 2 bad
 * configuration, 3 the hub refused this trust (wrong, rotated or revoked key; disabled trust; key of another trust),
 * 4 another gateway is running on the same state directory. While it runs it keeps `<state dir>/health.json`
 * saying whether it is linked to the hub (a container health check reads it with shared/health/probe.ts).
 */
import * as path from "node:path";
import { loadOrExit } from "@flip/shared/config/settings.js";
import { keepHealthFile } from "@flip/shared/health/health-file.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { stopOnSignals } from "@flip/shared/process/lifecycle.js";
import { startMetrics } from "@flip/shared/telemetry/metrics.js";
import { stopTelemetry } from "@flip/shared/telemetry/sdk.js";
import { readGatewayConfig } from "./config.js";
import { startGateway, taskLogPath } from "./gateway.js";
import { LinkRefusedError } from "./link/link-errors.js";
import { observeGateway } from "./metrics.js";
import { lockStateDir, StateDirInUseError } from "./state-dir-lock.js";
import { createDataAccessClient } from "@flip/data-access/client.js";
import { createImagingClient } from "@flip/imaging/client.js";
import { grpcHealthProbe } from "./health/data-access-probe.js";
import { trustTaskHandlers } from "./tasks/registry.js";
import { FileTaskLog } from "./tasks/task-log.js";
import { startTraining } from "./training/start-training.js";

export const EXIT_LINK_REFUSED = 3;
export const EXIT_STATE_DIR_IN_USE = 4;

const config = loadOrExit(() => readGatewayConfig(process.env));
const log = createLogger({ service: "trust-gateway", level: config.logLevel });
// Before anything reads or writes the state directory: a second gateway on it would run every task twice.
try {
  lockStateDir(config.stateDir);
} catch (e) {
  if (!(e instanceof StateDirInUseError)) throw e;
  log.fatal({ stateDir: e.stateDir, holderPid: e.pid }, e.message);
  process.exit(EXIT_STATE_DIR_IN_USE);
}
// Signals are handled from here on, before anything starts: a SIGTERM during start-up (a service manager
// stopping it at once) stops what has started so far, in reverse order, and exits 0 — never the default
// ungraceful death. Each part adds its own stop as it starts.
const stops: (() => Promise<void>)[] = [];
stopOnSignals(log, async () => {
  for (const stop of stops.reverse()) await stop();
});
const metrics = await startMetrics(config.metrics, log);
stops.push(() => metrics.close());
const dataAccess = config.dataAccessUrl ? createDataAccessClient({ baseUrl: config.dataAccessUrl, internalKey: config.internalKey! }) : undefined;
if (!dataAccess) log.warn("FLIP_DATA_ACCESS_URL is not set: this gateway takes no cohort tasks");
const imaging = config.imagingUrl ? createImagingClient({ baseUrl: config.imagingUrl, internalKey: config.internalKey! }) : undefined;
if (!imaging) log.info("FLIP_IMAGING_URL is not set: this gateway takes no imaging tasks and workloads see no images");
const taskLog = new FileTaskLog(taskLogPath(config.stateDir));
const training = config.training ? await startTraining({ ...config, training: config.training }, { log, taskLog, dataAccess, imaging }) : undefined;
if (training) stops.push(() => training.close());
else log.info("FLIP_TRAINING is not on: this gateway takes no training tasks");
const gateway = await startGateway(config, log, {
  handlers: trustTaskHandlers({ dataAccess, imaging, training: training?.workloads }),
  probes: [
    ...(config.dataAccessUrl ? [grpcHealthProbe("data-access", config.dataAccessUrl)] : []),
    ...(config.imagingUrl ? [grpcHealthProbe("imaging", config.imagingUrl)] : []),
  ],
  taskLog,
});
stops.push(() => gateway.close());
observeGateway(metrics.meter, gateway);
// Rewritten every 5 s: a container health check treats a file older than 30 s as a stuck gateway.
const healthFile = await keepHealthFile(
  path.join(config.stateDir, "health.json"),
  () => (gateway.link.state === "linked" ? { serving: true, detail: "linked to the hub" } : { serving: false, detail: `not linked to the hub (${gateway.link.state})` }),
  5_000,
  log,
);
stops.push(() => healthFile.stop());
try {
  await gateway.done;
} catch (e) {
  if (!(e instanceof LinkRefusedError)) throw e;
  log.fatal({ code: e.code, reason: e.message }, "the hub refused this gateway; not retrying (fix the configuration, then start it again)");
  await stopTelemetry();
  process.exit(EXIT_LINK_REFUSED);
}
