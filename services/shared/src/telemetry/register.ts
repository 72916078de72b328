/**
 * Preload for service processes: `node --import tsx --import @flip/shared/telemetry/register.ts main.ts`.
 * Registers the ESM hook so pino is instrumented (trace ids in logs), then starts the SDK before the
 * service's own modules load. A wrong OTEL_* setting stops the process with one line, like any setting.
 */
import { register } from "node:module";
import { loadOrExit } from "../config/settings.js";
import { startTelemetry } from "./sdk.js";

/** FLIP_SERVICE_NAME, else the service whose entry point runs (`services/<name>/src/…`): hub, trust-gateway, data-access, imaging. */
function serviceName(): string {
  return process.env.FLIP_SERVICE_NAME ?? /services\/([a-z-]+)\/src\//.exec(process.argv[1] ?? "")?.[1] ?? "flip";
}

register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
loadOrExit(() => startTelemetry(serviceName()));
