/**
 * The gateway against a scripted hub over real HTTP/2: what it does when the hub names another trust,
 * and what it reports after the hub ends a stream.
 */
import test from "ava";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectResponseSchema, LinkService, type ConnectRequest, type Hello } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { issueKey } from "@flip/shared/auth/keys.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { serve, type RunningServer } from "@flip/shared/server/serve.js";
import type { GatewayConfig } from "../config.js";
import { startGateway } from "../gateway.js";
import { staticHealth } from "../health/health-reporter.js";
import { TrustMismatchError } from "./link-errors.js";

const log = createLogger({ service: "test", level: "silent" });

type HubMessage = MessageInitShape<typeof ConnectResponseSchema>["message"];

/** A hub whose n-th stream runs `script(n, hello, incoming)`, yielding the hub's messages. */
async function scriptedHub(
  script: (n: number, hello: Hello, incoming: AsyncIterator<ConnectRequest>) => AsyncGenerator<HubMessage>,
): Promise<RunningServer> {
  let streams = 0;
  return await serve({
    host: "127.0.0.1",
    port: 0,
    services: [LinkService],
    log,
    routes(router) {
      router.service(LinkService, {
        async *connect(requests) {
          const it = requests[Symbol.asyncIterator]();
          const first = await it.next();
          const hello = (first.value as ConnectRequest).message.value as Hello;
          for await (const message of script(++streams, hello, it)) yield create(ConnectResponseSchema, { message });
        },
      });
    },
  });
}

function config(hubUrl: string, trustCode: string): GatewayConfig {
  return {
    hubUrl,
    trustCode,
    trustKey: issueKey("trust").key,
    capacity: new Map([["echo", 2]]),
    gpus: { mode: "none" },
    stateDir: "/nonexistent",
    hubCa: undefined,
    pingIntervalMs: 1_000,
    pingTimeoutMs: 1_000,
    reconnectMinMs: 20,
    reconnectMaxMs: 100,
    healthIntervalMs: 60_000,
    logLevel: "silent",
  };
}

const welcome = (trustCode: string): HubMessage => ({ case: "welcome", value: { trustId: "t", trustCode, heartbeatInterval: durationFromMs(1_000) } });

test("a gateway refuses to run when the hub names another trust than the one it was configured for", async (t) => {
  const hub = await scriptedHub(async function* () {
    yield welcome("someone-else");
    await new Promise((r) => setTimeout(r, 5_000));
  });
  t.teardown(() => hub.close(100));
  const gw = await startGateway(config(hub.url, "gstt"), log, { health: staticHealth(), persistent: false });
  const err = await t.throwsAsync(gw.done, { instanceOf: TrustMismatchError });
  t.regex(err!.message, /"someone-else".*configured for "gstt"/);
});

test("after the hub ends a stream mid-task, the gateway reconnects, reports the task it holds, and delivers its result", async (t) => {
  let secondHello: Hello | undefined;
  const results: string[] = [];
  const hub = await scriptedHub(async function* (n, hello, incoming) {
    yield welcome("gstt");
    if (n === 1) {
      yield {
        case: "offer",
        value: {
          taskId: "00000000-0000-4000-8000-00000000000a",
          attempt: 1,
          kind: TaskKind.ECHO,
          spec: { kind: { case: "echo", value: { message: "held", delay: durationFromMs(300) } } },
          deadline: timestampFromMs(Date.now() + 60_000),
        },
      };
      return; // the hub ends the stream while the task runs
    }
    secondHello ??= hello;
    for (let m = await incoming.next(); !m.done; m = await incoming.next()) {
      if (m.value.message.case === "result") {
        const { taskId, attempt } = m.value.message.value;
        results.push(taskId);
        // Until this ack the gateway would send the result again on every new stream.
        yield { case: "resultAck", value: { taskId, attempt, recorded: true } };
      }
    }
  });
  t.teardown(() => hub.close(100));
  const gw = await startGateway(config(hub.url, "gstt"), log, { health: staticHealth(), persistent: false });
  t.teardown(() => gw.close());
  for (let i = 0; i < 200 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 200 && gw.runner.inFlight().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  // A second delivery of the same result would arrive within this window.
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(gw.runner.inFlight(), [], "acknowledged: nothing left to deliver");
  t.deepEqual(secondHello?.inFlight.map((r) => [r.taskId, r.attempt]), [["00000000-0000-4000-8000-00000000000a", 1]]);
  t.deepEqual(results, ["00000000-0000-4000-8000-00000000000a"]);
});
