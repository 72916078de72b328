import * as http2 from "node:http2";
import * as net from "node:net";
import test from "ava";
import { ConfigError, SettingsReader } from "../config/settings.js";
import { createLogger } from "../logging/logger.js";
import { serve } from "../server/serve.js";
import { eventually } from "../testing/eventually.js";
import { sampleValue, scrape } from "../testing/metrics-scrape.js";
import { MetricsListenError } from "./metrics-endpoint.js";
import { METRICS_OFF, readMetricsAddress, startMetrics } from "./metrics.js";

const log = createLogger({ service: "metrics-test", level: "silent" });
const ANY_PORT = { host: "127.0.0.1", port: 0 };

test("metrics are off when FLIP_METRICS_ADDR is unset: no address, no endpoint, a meter that records nothing", async (t) => {
  const address = readMetricsAddress(new SettingsReader({}));
  t.is(address, undefined);
  const metrics = await startMetrics(address, log);
  t.is(metrics, METRICS_OFF);
  t.is(metrics.url, undefined);
  // Instruments from the no-op meter accept values and keep none.
  metrics.meter.createCounter("flip_test_total").add(1);
  await metrics.close();
});

test("FLIP_METRICS_ADDR takes host:port, an IPv6 host in brackets, and port 0", (t) => {
  t.deepEqual(readMetricsAddress(new SettingsReader({ FLIP_METRICS_ADDR: "0.0.0.0:9464" })), { host: "0.0.0.0", port: 9464 });
  t.deepEqual(readMetricsAddress(new SettingsReader({ FLIP_METRICS_ADDR: "[::1]:0" })), { host: "::1", port: 0 });
});

for (const bad of ["9464", "localhost", "127.0.0.1:99999", "127.0.0.1:port"]) {
  test(`FLIP_METRICS_ADDR=${bad} is refused with a message naming the setting`, (t) => {
    const e = t.throws(() => readMetricsAddress(new SettingsReader({ FLIP_METRICS_ADDR: bad })), { instanceOf: ConfigError });
    t.is(e?.setting, "FLIP_METRICS_ADDR");
    t.regex(e?.message ?? "", /^FLIP_METRICS_ADDR=".*" is not valid: expected host:port/);
  });
}

test("an address already in use stops the start with an error that says which setting to change", async (t) => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const e = await t.throwsAsync(() => startMetrics({ host: "127.0.0.1", port }, log), { instanceOf: MetricsListenError });
  t.is(e?.message, `cannot serve metrics on 127.0.0.1:${port} (FLIP_METRICS_ADDR): another process listens there; set FLIP_METRICS_ADDR to a free host:port, or empty to turn metrics off`);
});

test("two services in one process keep their own instruments, values and endpoints", async (t) => {
  const a = await startMetrics(ANY_PORT, log);
  const b = await startMetrics(ANY_PORT, log);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.not(a.url, b.url);
  a.meter.createCounter("flip_test_things", { description: "things" }).add(3, { kind: "echo" });
  b.meter.createCounter("flip_test_things", { description: "things" }).add(5, { kind: "echo" });
  t.is(sampleValue(await scrape(a.url!), "flip_test_things_total", { kind: "echo" }), 3);
  t.is(sampleValue(await scrape(b.url!), "flip_test_things_total", { kind: "echo" }), 5);

  await a.close();
  await t.throwsAsync(() => fetch(a.url!), undefined, "a closed endpoint no longer answers");
  t.is(sampleValue(await scrape(b.url!), "flip_test_things_total", { kind: "echo" }), 5, "the other keeps serving");
});

test("the endpoint reports how long the event loop was blocked, and answers only GET /metrics", async (t) => {
  const m = await startMetrics(ANY_PORT, log);
  t.teardown(() => m.close());
  await scrape(m.url!);
  await new Promise<void>((resolve) =>
    setTimeout(() => {
      const until = Date.now() + 300;
      while (Date.now() < until);
      resolve();
    }, 20),
  );
  // The sampler's next tick, after the block, records it.
  await new Promise((r) => setTimeout(r, 50));
  const body = await scrape(m.url!);
  t.true(sampleValue(body, "flip_event_loop_lag_max_seconds")! >= 0.25, body);
  t.true(sampleValue(body, "flip_event_loop_lag_p99_seconds")! >= 0);
  t.is((await fetch(m.url!.replace(/\/metrics$/, "/other"))).status, 404);
  t.is((await fetch(m.url!, { method: "POST" })).status, 405);
});

test("a server counts its open HTTP/2 sessions on the meter it is given", async (t) => {
  const m = await startMetrics(ANY_PORT, log);
  const server = await serve({ host: "127.0.0.1", port: 0, services: [], routes: () => undefined, log, meter: m.meter });
  t.teardown(async () => {
    await server.close(0);
    await m.close();
  });
  const client = http2.connect(server.url);
  await new Promise<void>((resolve, reject) => client.once("connect", () => resolve()).once("error", reject));
  const open = async () => sampleValue(await scrape(m.url!), "flip_http2_sessions_open");
  t.is(await eventually(open, (n) => n === 1, { what: "one session counted" }), 1);
  client.close();
  t.is(await eventually(open, (n) => n === 0, { what: "the closed session uncounted" }), 0);
});
