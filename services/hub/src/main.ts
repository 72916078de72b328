import { loadOrExit } from "@flip/shared/config/settings.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { stopOnSignals } from "@flip/shared/process/lifecycle.js";
import { readHubConfig } from "./config.js";
import { startHub } from "./hub.js";

const config = loadOrExit(() => readHubConfig(process.env));
const log = createLogger({ service: "hub", level: config.logLevel });
if (!config.adminToken) log.warn("FLIP_ADMIN_TOKEN is not set: admin RPCs can only be called by signed-in Admin users");
const hub = await startHub(config, log);
stopOnSignals(log, () => hub.close());
