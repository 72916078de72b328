import { gzipSync } from "node:zlib";
import test, { type ExecutionContext } from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckRequestSchema } from "@flip/gen/health/v1/health_pb.js";
import { createLogger } from "../logging/logger.js";
import { connectErrorOf } from "../testing/connect-error-of.js";
import { grpcFrame, rawHttp1, rawHttp2 } from "../testing/raw-http.js";
import type { DirectRoute } from "../direct/direct-routes.js";
import { serve, type ServeOptions } from "./serve.js";

const KiB = 1024;
const MiB = 1024 * KiB;

async function start(t: ExecutionContext, opts: Partial<ServeOptions>) {
  const log = createLogger({ service: "test", level: "silent" });
  const server = await serve({ host: "127.0.0.1", port: 0, services: [], routes: () => undefined, log, ...opts });
  t.teardown(() => server.close(500));
  return server;
}

/** Every protocol and HTTP version a caller may use, each with an Authorization header or not. */
function transports(baseUrl: string, authorization?: string): Record<string, Transport> {
  const withAuthorization: Interceptor = (next) => async (req) => {
    if (authorization) req.header.set("authorization", authorization);
    return await next(req);
  };
  const interceptors = [withAuthorization];
  return {
    "Connect over HTTP/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }),
    "Connect over HTTP/2": createConnectTransport({ baseUrl, httpVersion: "2", interceptors }),
    gRPC: createGrpcTransport({ baseUrl, interceptors }),
    "gRPC-Web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  };
}

test("each RPC has its own read cap: the one given a larger cap takes a message that the default refuses elsewhere", async (t) => {
  const server = await start(t, { readMaxBytes: 1 * KiB, readMaxBytesFor: { "grpc.health.v1.Health/Check": 64 * KiB } });
  const big = { service: "x".repeat(4 * KiB) };
  for (const [name, transport] of Object.entries(transports(server.url))) {
    const health = createClient(Health, transport);
    const check = await health.check(big).then(() => undefined, (e: unknown) => ConnectError.from(e));
    t.not(check?.code, Code.ResourceExhausted, `${name}: Check has the larger cap`);
    const watch = await connectErrorOf(health.watch(big)[Symbol.asyncIterator]().next());
    t.is(watch.code, Code.ResourceExhausted, `${name}: Watch keeps the default cap`);
  }
});

test("a gzip bomb is cut at the read cap: decompression stops there and the caller gets ResourceExhausted", async (t) => {
  const server = await start(t, { readMaxBytes: 1 * MiB });
  // 32 MiB of JSON that gzip packs into about 32 KiB.
  const bombJson = gzipSync(Buffer.from(`{"service":"${"a".repeat(32 * MiB)}"}`));
  t.true(bombJson.length < 1 * MiB);
  const connect = await rawHttp1(server.url, "/grpc.health.v1.Health/Check", { "content-type": "application/json", "content-encoding": "gzip", "connect-protocol-version": "1" }, bombJson);
  t.is(JSON.parse(connect.body.toString()).code, "resource_exhausted");

  const bombProto = gzipSync(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "a".repeat(32 * MiB) })));
  const grpc = await rawHttp2(server.url, "/grpc.health.v1.Health/Check", { "content-type": "application/grpc", "grpc-encoding": "gzip", te: "trailers" }, grpcFrame(bombProto, 1));
  t.is(grpc.trailers["grpc-status"] ?? grpc.headers["grpc-status"], String(Code.ResourceExhausted));
});

test("the header check refuses a call before its body is decoded or decompressed, in every protocol and on the direct path", async (t) => {
  const reachedDirect: string[] = [];
  const direct: DirectRoute = {
    method: Health.method.check,
    async handle(call) {
      reachedDirect.push(call.requestHeader.get("authorization") ?? "");
      await call.read();
    },
  };
  const server = await start(t, {
    readMaxBytes: 1 * MiB,
    direct: [direct],
    checkHeaders: (rpc, header) => (header.get("authorization") ? undefined : new ConnectError(`${rpc} needs a credential, first`, Code.Unauthenticated)),
  });
  for (const [name, transport] of Object.entries(transports(server.url))) {
    const health = createClient(Health, transport);
    const unary = await connectErrorOf(health.check({ service: "s" }));
    t.is(unary.code, Code.Unauthenticated, name);
    t.is(unary.rawMessage, "grpc.health.v1.Health/Check needs a credential, first", name);
    const stream = await connectErrorOf(health.watch({ service: "s" })[Symbol.asyncIterator]().next());
    t.is(stream.code, Code.Unauthenticated, name);
  }
  t.deepEqual(reachedDirect, [], "the direct route never ran for a refused call");

  // A gzip bomb answers Unauthenticated, not ResourceExhausted: it was never decompressed. With a
  // credential it is, and is cut at the cap.
  const bomb = gzipSync(Buffer.from(`{"service":"${"a".repeat(32 * MiB)}"}`));
  const connectHeaders = { "content-type": "application/json", "content-encoding": "gzip", "connect-protocol-version": "1" };
  const anonymous = await rawHttp1(server.url, "/grpc.health.v1.Health/Check", connectHeaders, bomb);
  t.is(JSON.parse(anonymous.body.toString()).code, "unauthenticated");
  const signedIn = await rawHttp1(server.url, "/grpc.health.v1.Health/Check", { ...connectHeaders, authorization: "Bearer x" }, bomb);
  t.is(JSON.parse(signedIn.body.toString()).code, "resource_exhausted");
  const grpcBomb = await rawHttp2(server.url, "/grpc.health.v1.Health/Watch", { "content-type": "application/grpc", "grpc-encoding": "gzip", te: "trailers" }, grpcFrame(bomb, 1));
  t.is(grpcBomb.trailers["grpc-status"], String(Code.Unauthenticated));
});
