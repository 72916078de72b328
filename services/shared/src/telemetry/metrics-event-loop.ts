import { monitorEventLoopDelay } from "node:perf_hooks";
import type { BatchObservableCallback, Meter } from "@opentelemetry/api";

/** How often the loop is sampled; each sample is the time between two ticks of a timer this often. */
const RESOLUTION_MS = 10;

/** A sample (nanoseconds between ticks) as lag: how much later than due the tick came, in seconds. */
const lagSeconds = (ns: number) => Math.max(0, (ns - RESOLUTION_MS * 1e6) / 1e9);

/**
 * Event-loop lag as two gauges, over the time since the previous scrape: its 99th percentile and its
 * maximum, in seconds. A busy or blocked loop delays every request and every heartbeat of the process.
 * Returns a function that stops measuring.
 */
export function observeEventLoopLag(meter: Meter): () => void {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const p99 = meter.createObservableGauge("flip_event_loop_lag_p99_seconds", {
    description: "99th percentile of the event loop's lag since the previous scrape",
    unit: "s",
  });
  const max = meter.createObservableGauge("flip_event_loop_lag_max_seconds", {
    description: "Longest event-loop lag since the previous scrape",
    unit: "s",
  });
  const observe: BatchObservableCallback = (result) => {
    // Both read 0 when nothing was sampled since the last reset.
    result.observe(p99, lagSeconds(delay.percentile(99)));
    result.observe(max, lagSeconds(delay.max));
    delay.reset();
  };
  meter.addBatchObservableCallback(observe, [p99, max]);
  return () => {
    meter.removeBatchObservableCallback(observe, [p99, max]);
    delay.disable();
  };
}
