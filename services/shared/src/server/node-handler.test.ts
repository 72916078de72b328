import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import test, { type ExecutionContext } from "ava";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import { createLogger } from "../logging/logger.js";
import { connectNodeHandler } from "./node-handler.js";

/** A logger whose JSON lines are kept for the test to read. */
function capturedLogger() {
  const lines: { level: number; msg: string; rpc?: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger({ service: "test", level: "debug", destination }), lines };
}

/** Serves `handler` over h2c on a free port until the test ends; returns the base URL. */
async function listen(t: ExecutionContext, handler: ReturnType<typeof connectNodeHandler>): Promise<string> {
  const server = http2.createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test("a caller that goes away mid-stream is logged at debug through pino, never printed with console.error", async (t) => {
  const { log, lines } = capturedLogger();
  const printed: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void printed.push(args);
  t.teardown(() => (console.error = consoleError));

  const chunk = new Uint8Array(1024 * 1024);
  const handler = connectNodeHandler({
    log,
    routes(router) {
      router.service(ArtifactService, {
        // Large chunks as fast as HTTP/2 takes them: a write is in flight when the caller cuts the stream.
        async *download() {
          for (let offset = 0n; ; offset += BigInt(chunk.length)) yield { offset, data: chunk };
        },
      });
    },
  });
  // The connection drops (as when a network path breaks), not a polite cancel of the one call.
  const session = http2.connect(await listen(t, handler));
  const req = session.request({ ":path": "/flip.link.v1.ArtifactService/Download", ":method": "POST", "content-type": "application/grpc", te: "trailers" });
  req.end(Buffer.from([0, 0, 0, 0, 3, 0x0a, 0x01, 0x78])); // gRPC frame: DownloadRequest{artifact_id: "x"}
  let received = 0;
  await new Promise<void>((resolve) =>
    req.on("data", (d: Buffer) => {
      received += d.length;
      if (received > 8 * 1024 * 1024) {
        session.socket.destroy();
        resolve();
      }
    }),
  );
  for (const end = Date.now() + 10_000; Date.now() < end && !lines.some((l) => l.msg.includes("went away")); ) await new Promise((r) => setTimeout(r, 20));
  const wentAway = lines.find((l) => l.msg.includes("went away"));
  t.is(wentAway?.level, 20, "debug");
  t.is(wentAway?.rpc, "flip.link.v1.ArtifactService/Download");
  t.deepEqual(lines.filter((l) => l.level >= 50), []);
  t.deepEqual(printed, []);
});

test("an unknown path is answered 404 and nothing is logged", async (t) => {
  const { log, lines } = capturedLogger();
  const session = http2.connect(await listen(t, connectNodeHandler({ log, routes: (router) => router.service(Health, { check: () => ({ status: Status.SERVING }) }) })));
  t.teardown(() => session.close());
  const status = await new Promise<number>((resolve, reject) => {
    const req = session.request({ ":path": "/no.such.Service/Method", ":method": "POST" });
    req.on("response", (h) => resolve(Number(h[":status"])));
    req.on("error", reject);
    req.end();
  });
  t.is(status, 404);
  t.deepEqual(lines, []);
});
