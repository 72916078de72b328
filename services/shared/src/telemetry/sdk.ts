import { NodeSDK } from "@opentelemetry/sdk-node";
import type { SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace";
import { OTLPTraceExporter as OtlpProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { PinoInstrumentation } from "@opentelemetry/instrumentation-pino";
import { SettingsReader } from "../config/settings.js";

/**
 * Keeps spans recording (so trace and span ids exist for logs and propagation) while exporting nothing.
 * Used when no OTLP endpoint is configured.
 */
const recordOnly: SpanProcessor = {
  onStart() {},
  onEnd() {},
  forceFlush: async () => {},
  shutdown: async () => {},
};

/** The OTLP encodings spans can be exported in (both over HTTP, as an OpenTelemetry Collector takes them on port 4318). */
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;

function exportConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporter === "otlp");
}

/**
 * The OTLP exporter the standard variables ask for: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
 * OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. Endpoint, headers and timeout are read by the exporter
 * itself from the other OTEL_EXPORTER_OTLP_* variables. Throws ConfigError for any other protocol.
 */
export function otlpTraceExporter(env: NodeJS.ProcessEnv): SpanExporter {
  const setting = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" : "OTEL_EXPORTER_OTLP_PROTOCOL";
  const protocol = new SettingsReader(env).oneOf(setting, OTLP_PROTOCOLS, "http/protobuf");
  return protocol === "http/json" ? new OtlpJsonExporter() : new OtlpProtobufExporter();
}

let sdk: NodeSDK | undefined;

/**
 * Starts OpenTelemetry from the standard OTEL_* variables: OTLP trace export when an endpoint is set
 * (batched as OTEL_BSP_* say), nothing exported when not. Disabled entirely by OTEL_SDK_DISABLED=true.
 * Throws ConfigError for an OTLP protocol other than http/protobuf or http/json.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env): void {
  if (sdk || env.OTEL_SDK_DISABLED === "true") return;
  env.OTEL_METRICS_EXPORTER ??= "none";
  env.OTEL_LOGS_EXPORTER ??= "none";
  sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    // A trace exporter given alone is batched by the SDK with the OTEL_BSP_* settings.
    ...(exportConfigured(env) ? { traceExporter: otlpTraceExporter(env) } : { spanProcessors: [recordOnly] }),
    instrumentations: [new PinoInstrumentation({ disableLogSending: true })],
  });
  sdk.start();
}

/** Ends telemetry, exporting every span not yet sent (the services call it on SIGTERM); safe to call when it never started. */
export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch(() => undefined);
}
