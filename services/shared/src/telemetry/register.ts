/**
 * Preload for service processes: `node --import tsx --import @flip/shared/telemetry/register.ts main.ts`.
 * Registers the ESM hook so pino is instrumented (trace ids in logs), then starts the SDK before the
 * service's own modules load.
 */
import { register } from "node:module";
import { startTelemetry } from "./sdk.js";

register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
startTelemetry(process.env.FLIP_SERVICE_NAME ?? "flip");
