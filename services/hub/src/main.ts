import { loadOrExit } from "@flip/shared/config/settings.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { stopOnSignals } from "@flip/shared/process/lifecycle.js";
import { readHubConfig } from "./config.js";
import { startHub } from "./hub.js";

const config = loadOrExit(() => readHubConfig(process.env));
const log = createLogger({ service: "hub", level: config.logLevel });
if (!config.adminToken) log.warn("FLIP_ADMIN_TOKEN is not set: admin RPCs can only be called by signed-in Admin users");
// Signals are handled from the start, so a SIGTERM during start-up still closes what was opened.
const starting = startHub(config, log);
stopOnSignals(log, async () => (await starting).close());
try {
  await starting;
} catch (e) {
  log.fatal({ err: e instanceof Error ? e.message : String(e) }, "the hub could not start");
  process.exit(1);
}
