/**
 * The imaging process:
 *   node --import tsx --import @flip/shared/telemetry/register.ts services/imaging/src/server.ts
 */
import { loadOrExit } from "@flip/shared/config/settings.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { stopOnSignals } from "@flip/shared/process/lifecycle.js";
import { readImagingConfig } from "./config.js";
import { startImaging } from "./imaging.js";

const config = loadOrExit(() => readImagingConfig(process.env));
const log = createLogger({ service: "imaging", level: config.logLevel });
// Signals are handled from the start, so a SIGTERM during start-up still closes what was opened.
const starting = startImaging(config, log);
stopOnSignals(log, async () => (await starting).close());
await starting;
