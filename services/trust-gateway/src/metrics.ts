import type { BatchObservableCallback, Meter } from "@opentelemetry/api";
import type { RunningGateway } from "./gateway.js";

/** The gateway's gauges, read at each scrape: whether it is linked to the hub, and the tasks it holds. */
export function observeGateway(meter: Meter, gateway: Pick<RunningGateway, "link" | "runner">): void {
  const linked = meter.createObservableGauge("flip_gateway_linked", { description: "1 while this gateway holds a live link to the hub, else 0" });
  const held = meter.createObservableGauge("flip_gateway_tasks_held", {
    description: "Tasks this gateway accepted whose result the hub has not yet acknowledged (running, waiting for a slot, or delivering)",
    unit: "{task}",
  });
  const observe: BatchObservableCallback = (result) => {
    result.observe(linked, gateway.link.state === "linked" ? 1 : 0);
    result.observe(held, gateway.runner.runningCount);
  };
  meter.addBatchObservableCallback(observe, [linked, held]);
}
