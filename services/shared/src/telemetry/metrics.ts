/**
 * Prometheus metrics for one service process. With FLIP_METRICS_ADDR (host:port) set, `GET /metrics` is
 * served there in the Prometheus text format; unset, metrics are off: no listener, and every instrument
 * is OpenTelemetry's no-op.
 *
 * The metrics API has no global proxy provider the way traces have, so nothing here is global: a service
 * gets its `meter` from startMetrics and hands it to what it measures. Each hub started in one test
 * process therefore has instruments, values and an endpoint of its own.
 */
import { createNoopMeter, type Meter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { SettingsReader } from "../config/settings.js";
import type { Logger } from "../logging/logger.js";
import { serveMetricsEndpoint, type MetricsAddress } from "./metrics-endpoint.js";
import { observeEventLoopLag } from "./metrics-event-loop.js";

export type { MetricsAddress };

export const METRICS_ADDR_SETTING = "FLIP_METRICS_ADDR";

/** Upper bounds (seconds) for latencies from a millisecond to ten minutes: dispatch, queries, answers. */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** FLIP_METRICS_ADDR as host:port (port 0 picks a free one), or undefined when unset: metrics off. */
export function readMetricsAddress(s: SettingsReader): MetricsAddress | undefined {
  return s.optionalString(METRICS_ADDR_SETTING) === undefined ? undefined : s.address(METRICS_ADDR_SETTING, "");
}

export interface ServiceMetrics {
  /** Where the service makes its instruments; a no-op meter when metrics are off. */
  readonly meter: Meter;
  /** The scrape URL, e.g. http://127.0.0.1:9464/metrics; undefined when metrics are off. */
  readonly url: string | undefined;
  /** Stops serving and stops the process measurements; safe to call twice. */
  close(): Promise<void>;
}

/** Metrics off: instruments made from this meter record nothing and cost next to nothing. */
export const METRICS_OFF: ServiceMetrics = { meter: createNoopMeter(), url: undefined, close: async () => undefined };

/**
 * Starts this process's metrics: at `address`, an endpoint serving what the service's instruments
 * recorded plus the event-loop lag; without an address, METRICS_OFF. Throws MetricsListenError when
 * the address cannot be listened on.
 */
export async function startMetrics(address: MetricsAddress | undefined, log: Logger): Promise<ServiceMetrics> {
  if (!address) return METRICS_OFF;
  // Scope and target_info labels would repeat on every series what Prometheus's own job and instance say.
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const meter = provider.getMeter("flip");
  const stopLag = observeEventLoopLag(meter);
  let endpoint: Awaited<ReturnType<typeof serveMetricsEndpoint>>;
  try {
    endpoint = await serveMetricsEndpoint(address, (req, res) => exporter.getMetricsRequestHandler(req, res));
  } catch (e) {
    stopLag();
    await provider.shutdown();
    throw e;
  }
  log.info({ url: endpoint.url }, "metrics listening");
  let closing: Promise<void> | undefined;
  return {
    meter,
    url: endpoint.url,
    close: () =>
      (closing ??= (async () => {
        await endpoint.close();
        stopLag();
        await provider.shutdown();
      })()),
  };
}
