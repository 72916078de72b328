import * as http2 from "node:http2";
import * as net from "node:net";
import test, { type ExecutionContext } from "ava";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionRequestSchema, type ServerReflectionRequest } from "@flip/gen/grpc/reflection/v1/reflection_pb.js";
import { createLogger } from "../logging/logger.js";
import { grpcFrame } from "../testing/raw-http.js";
import { serve } from "./serve.js";
import type { TransportTimeouts } from "./transport-timeouts.js";

/** Short limits, so that a test waits for the server's decision rather than minutes. */
const SHORT: Partial<TransportTimeouts> = { firstBytesMs: 500, headersMs: 500, requestMs: 1_500, idleSessionMs: 1_000 };

async function start(t: ExecutionContext) {
  const server = await serve({ host: "127.0.0.1", port: 0, services: [], routes: () => undefined, log: createLogger({ service: "test", level: "silent" }), timeouts: SHORT });
  t.teardown(() => server.close(500));
  return server;
}

/** Connects a raw TCP socket; resolves once the server closed it. */
function closedBy(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once("close", () => resolve()));
}

/** Writes one byte of `text` at a time while the socket is open: a peer that trickles. */
function trickle(socket: net.Socket, text: string): void {
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || at >= text.length) return;
    socket.write(text[at++]!);
  }, 20);
  socket.once("close", () => clearInterval(timer));
}

test("a connection that sends nothing is closed", async (t) => {
  const server = await start(t);
  const socket = net.connect(server.port, "127.0.0.1");
  socket.on("error", () => undefined);
  await closedBy(socket);
  t.pass();
});

test("HTTP/1.1 headers that trickle in are cut off", async (t) => {
  const server = await start(t);
  const socket = net.connect(server.port, "127.0.0.1");
  socket.on("error", () => undefined);
  socket.write("POST /grpc.health.v1.Health/Check HTTP/1.1\r\n");
  trickle(socket, `host: 127.0.0.1\r\nx-slow: ${"a".repeat(10_000)}\r\n\r\n`);
  await closedBy(socket);
  t.pass();
});

test("a one-message request whose body trickles is cut on HTTP/1.1 and HTTP/2, while streams that started earlier keep running", async (t) => {
  const server = await start(t);
  // Long calls, started before the slow requests: a bidirectional stream and a server stream over HTTP/1.1.
  const requests: ServerReflectionRequest[] = [];
  let more: (() => void) | undefined;
  async function* reflectionRequests() {
    for (;;) {
      while (requests.length === 0) await new Promise<void>((r) => (more = r));
      yield requests.shift()!;
    }
  }
  const ask = () => {
    requests.push(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }));
    more?.();
  };
  const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: server.url })).serverReflectionInfo(reflectionRequests())[Symbol.asyncIterator]();
  ask();
  t.is((await reflection.next()).done, false);
  const watch = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })).watch({ service: "" })[Symbol.asyncIterator]();
  t.is((await watch.next()).value?.status, Status.SERVING);

  const h1 = net.connect(server.port, "127.0.0.1");
  h1.on("error", () => undefined);
  h1.write("POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{");
  trickle(h1, `"service": "${"a".repeat(990)}`);
  await closedBy(h1);

  const session = http2.connect(server.url);
  t.teardown(() => session.destroy());
  const h2 = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
  h2.on("error", () => undefined);
  h2.write(grpcFrame(Buffer.alloc(10)).subarray(0, 8));
  await new Promise<void>((resolve) => h2.once("close", () => resolve()));
  t.is(h2.rstCode, http2.constants.NGHTTP2_CANCEL);

  // Both long calls outlived the request deadline and still answer.
  ask();
  t.is((await reflection.next()).done, false);
  server.health.set("", Status.NOT_SERVING);
  t.is((await watch.next()).value?.status, Status.NOT_SERVING);
  await reflection.return?.();
  await watch.return?.();
});

test("an HTTP/2 connection with no stream open is closed, and one holding a stream is kept", async (t) => {
  const server = await start(t);
  const busy = http2.connect(server.url);
  t.teardown(() => busy.destroy());
  const watch = busy.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
  watch.end(grpcFrame(new Uint8Array(0)));
  await new Promise<void>((resolve) => watch.once("data", () => resolve()));

  // Opened later, so its idle time ends after the busy session's would have.
  const idle = http2.connect(server.url);
  idle.on("error", () => undefined);
  const goaway = new Promise<void>((resolve) => idle.once("goaway", () => resolve()));
  await new Promise<void>((resolve) => idle.once("close", () => resolve()));
  await goaway;
  t.false(busy.closed || busy.destroyed);
  t.false(watch.closed);
});
