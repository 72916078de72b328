import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { PinoInstrumentation } from "@opentelemetry/instrumentation-pino";

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

function exportConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter === "none") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || exporter === "otlp");
}

let sdk: NodeSDK | undefined;

/**
 * Starts OpenTelemetry from the standard OTEL_* variables: OTLP trace export when an endpoint is set,
 * nothing exported when not. Disabled entirely by OTEL_SDK_DISABLED=true.
 */
export function startTelemetry(serviceName: string, env: NodeJS.ProcessEnv = process.env): void {
  if (sdk || env.OTEL_SDK_DISABLED === "true") return;
  env.OTEL_METRICS_EXPORTER ??= "none";
  env.OTEL_LOGS_EXPORTER ??= "none";
  sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? serviceName,
    spanProcessors: [exportConfigured(env) ? new BatchSpanProcessor({ exporter: new OTLPTraceExporter() }) : recordOnly],
    instrumentations: [new PinoInstrumentation({ disableLogSending: true })],
  });
  sdk.start();
}

/** Flushes and stops telemetry; safe to call when it never started. */
export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  sdk = undefined;
  await s?.shutdown().catch(() => undefined);
}
