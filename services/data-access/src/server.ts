/**
 * The data-access process:
 *   node --import tsx --import @flip/shared/telemetry/register.ts services/data-access/src/server.ts
 */
import { loadOrExit } from "@flip/shared/config/settings.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { stopOnSignals } from "@flip/shared/process/lifecycle.js";
import { readDataAccessConfig } from "./config.js";
import { startDataAccess } from "./data-access.js";

const config = loadOrExit(() => readDataAccessConfig(process.env));
const log = createLogger({ service: "data-access", level: config.logLevel });
// Signals are handled from the start, so a SIGTERM during start-up still closes what was opened.
const starting = startDataAccess(config, log);
stopOnSignals(log, async () => (await starting).close());
await starting;
