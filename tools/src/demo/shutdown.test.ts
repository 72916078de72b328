import test from "ava";
import { OrderedShutdown, onStopSignals, SAME_PRESS_MS } from "./shutdown.js";

test("components stop phase by phase, whatever order they were added in, one line each, once", async (t) => {
  const said: string[] = [];
  const stopped: string[] = [];
  const shutdown = new OrderedShutdown((line) => said.push(line));
  const stop = (name: string, ms = 0) => async () => {
    await new Promise((r) => setTimeout(r, ms));
    stopped.push(name);
  };
  shutdown.add("databases", "PostgreSQL of the hub", stop("hub db"));
  shutdown.add("hub", "hub", stop("hub"));
  shutdown.add("databases", "PostgreSQL of north", stop("north db"));
  shutdown.add("services", "data-access at north", stop("data-access", 30));
  shutdown.add("gateways", "gateway north", stop("gateway"));
  shutdown.add("workloads", "training workloads at north", async () => "none running");

  const [a, b] = await Promise.all([shutdown.stopAll(), shutdown.stopAll()]);
  t.is(a, b, "a second call waits for the first stop");
  t.deepEqual(stopped.slice(0, 3), ["gateway", "data-access", "hub"], "gateways, then services (even a slow one), then the hub");
  t.deepEqual(new Set(stopped.slice(3)), new Set(["hub db", "north db"]), "databases last");
  t.is(said.length, 6);
  t.regex(said[0]!, /^ {2}stopped training workloads at north: none running \(\d+\.\d s\)$/);
  t.deepEqual(a.failed, []);
  t.true(shutdown.empty);
});

test("a component that fails to stop is reported and the others still stop", async (t) => {
  const said: string[] = [];
  const shutdown = new OrderedShutdown((line) => said.push(line));
  let databaseStopped = false;
  shutdown.add("services", "imaging at north", () => Promise.reject(new Error("Orthanc did not exit")));
  shutdown.add("databases", "PostgreSQL of north", async () => void (databaseStopped = true));
  const report = await shutdown.stopAll();
  t.deepEqual(report.failed, ["imaging at north: Orthanc did not exit"]);
  t.true(said.includes("  imaging at north did not stop cleanly: Orthanc did not exit"));
  t.true(databaseStopped);
});

test.serial("the first SIGINT or SIGTERM stops in order; a repeat within SAME_PRESS_MS is the same key press; a later one stops at once", (t) => {
  let now = 1_000;
  const calls: string[] = [];
  const remove = onStopSignals({ stop: (s) => calls.push(`stop ${s}`), stopNow: (s) => calls.push(`now ${s}`) }, () => now);
  try {
    process.emit("SIGINT", "SIGINT");
    now += 5; // npm forwarding the terminal's signal
    process.emit("SIGINT", "SIGINT");
    now += SAME_PRESS_MS - 10;
    process.emit("SIGTERM", "SIGTERM");
    t.deepEqual(calls, ["stop SIGINT"]);
    now += 20;
    process.emit("SIGINT", "SIGINT");
    t.deepEqual(calls, ["stop SIGINT", "now SIGINT"]);
  } finally {
    remove();
  }
  t.is(process.listenerCount("SIGINT"), 0, "the routing is removed");
});
