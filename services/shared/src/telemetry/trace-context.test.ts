import test from "ava";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { trace } from "@opentelemetry/api";
import { RuntimeService } from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import { createLogger } from "../logging/logger.js";
import { serve } from "../server/serve.js";
import { startTelemetry, stopTelemetry } from "./sdk.js";

test.before(() => {
  // The SDK reads its switches from the process's environment (the test runner turns it off).
  process.env.OTEL_SDK_DISABLED = "false";
  process.env.OTEL_TRACES_EXPORTER = "none";
  startTelemetry("trace-context-test");
});
test.after.always(() => stopTelemetry());

test("a streaming handler runs in its RPC's span as its messages are pulled, so what it calls and logs belongs to the call", async (t) => {
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const callerSpan = "00f067aa0ba902b7";
  const seen: { traceId?: string; spanId?: string }[] = [];
  const server = await serve({
    host: "127.0.0.1",
    port: 0,
    services: [RuntimeService],
    log: createLogger({ service: "test", level: "silent" }),
    routes: (router) =>
      router.service(RuntimeService, {
        async *getGlobalWeights() {
          for (let round = 1; round <= 3; round++) {
            await new Promise((r) => setTimeout(r, 1));
            seen.push({ ...trace.getActiveSpan()?.spanContext() });
            yield { round };
          }
        },
      }),
  });
  t.teardown(() => server.close());
  const client = createClient(RuntimeService, createGrpcTransport({ baseUrl: server.url }));
  for await (const _ of client.getGlobalWeights({}, { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } })) void _;

  t.is(seen.length, 3);
  for (const s of seen) {
    t.is(s.traceId, traceId, "the handler's work continues the caller's trace");
    t.not(s.spanId, callerSpan, "inside the RPC's own span");
  }
  t.is(new Set(seen.map((s) => s.spanId)).size, 1, "one span for the whole call");
});
