import { Writable } from "node:stream";
import test, { type ExecutionContext } from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "@flip/gen/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionRequestSchema, ServerReflectionResponseSchema } from "@flip/gen/grpc/reflection/v1/reflection_pb.js";
import { createLogger } from "../logging/logger.js";
import { serve, type ServeOptions } from "../server/serve.js";
import type { DirectCall } from "./direct-call.js";
import { joinParts } from "./envelope.js";
import { connectErrorOf } from "../testing/connect-error-of.js";
import type { DirectRoute } from "./direct-routes.js";

/** A logger whose JSON lines are kept for the test to read. */
function capturedLogger() {
  const lines: { level: number; msg: string; err?: unknown }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: createLogger({ service: "test", level: "debug", destination }), lines };
}

async function serveWith(t: ExecutionContext, direct: DirectRoute[], extra: Partial<ServeOptions> = {}) {
  const { log, lines } = capturedLogger();
  const server = await serve({ host: "127.0.0.1", port: 0, services: [], routes: () => undefined, log, direct, ...extra });
  t.teardown(() => server.close(500));
  return { server, lines, grpcTransport: createGrpcTransport({ baseUrl: server.url }) };
}

/** Health/Check served directly: answers SERVICE_UNKNOWN, where Connect's registered handler answers SERVING. */
const directCheck: DirectRoute = {
  method: Health.method.check,
  async handle(call) {
    const req = fromBinary(HealthCheckRequestSchema, joinParts((await call.read())!));
    if (req.service === "refuse") throw new ConnectError("refused for the test", Code.PermissionDenied);
    if (req.service === "crash") throw new Error("a secret detail of the bug");
    call.send([toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: Status.SERVICE_UNKNOWN }))]);
  },
};


test("a gRPC binary call reaches the direct route; the same RPC over the Connect protocol reaches Connect's handler", async (t) => {
  const { server, grpcTransport } = await serveWith(t, [directCheck]);
  t.is((await createClient(Health, grpcTransport).check({})).status, Status.SERVICE_UNKNOWN);
  t.is((await createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "2" })).check({})).status, Status.SERVING);
  t.is((await createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })).check({})).status, Status.SERVING);
  // Routes that are not direct are untouched.
  t.is((await createClient(Health, grpcTransport).watch({})[Symbol.asyncIterator]().next()).value?.status, Status.SERVING);
});

test("a plain @grpc/grpc-js client is served by the direct route", async (t) => {
  const { server } = await serveWith(t, [directCheck]);
  const Ctor = grpc.makeGenericClientConstructor(
    {
      check: {
        path: "/grpc.health.v1.Health/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: { service: string }) => Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, m))),
        requestDeserialize: (b: Buffer) => fromBinary(HealthCheckRequestSchema, b),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      },
    },
    "Health",
  );
  const client = new Ctor(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const status = await new Promise<number>((resolve, reject) =>
    (client as unknown as { check: (req: unknown, cb: (e: Error | null, r?: { status: number }) => void) => void }).check({ service: "" }, (e, r) => (e ? reject(e) : resolve(r!.status))),
  );
  t.is(status, Status.SERVICE_UNKNOWN);
});

test("errors keep their code and message; a plain Error is Internal without its message, and logged", async (t) => {
  const { grpcTransport, lines } = await serveWith(t, [directCheck]);
  const health = createClient(Health, grpcTransport);
  const refused = await connectErrorOf(health.check({ service: "refuse" }));
  t.is(refused.code, Code.PermissionDenied);
  t.is(refused.rawMessage, "refused for the test");
  const crashed = await connectErrorOf(health.check({ service: "crash" }));
  t.is(crashed.code, Code.Internal);
  t.notRegex(crashed.rawMessage, /secret/);
  t.true(lines.some((l) => l.level === 50 && l.msg === "a call failed after it was routed"));
});

test("a bidirectional stream exchanges messages both ways and ends with an error status after messages", async (t) => {
  const route: DirectRoute = {
    method: ServerReflection.method.serverReflectionInfo,
    async handle(call: DirectCall) {
      let n = 0;
      for (let m = await call.read(); m; m = await call.read()) {
        const req = fromBinary(ServerReflectionRequestSchema, joinParts(m));
        if (req.host === "stop") throw new ConnectError("stopped on request", Code.FailedPrecondition);
        const res = create(ServerReflectionResponseSchema, { validHost: `${req.host}:${++n}` });
        call.send([toBinary(ServerReflectionResponseSchema, res)]);
      }
    },
  };
  const { grpcTransport } = await serveWith(t, [route]);
  const client = createClient(ServerReflection, grpcTransport);
  async function* requests() {
    for (const host of ["a", "b", "c"]) yield { host, messageRequest: { case: "listServices" as const, value: "" } };
  }
  const got: string[] = [];
  for await (const res of client.serverReflectionInfo(requests())) got.push(res.validHost);
  t.deepEqual(got, ["a:1", "b:2", "c:3"]);

  async function* thenStop() {
    yield* requests();
    yield { host: "stop", messageRequest: { case: "listServices" as const, value: "" } };
  }
  const seen: string[] = [];
  const err = await connectErrorOf(
    (async () => {
      for await (const res of client.serverReflectionInfo(thenStop())) seen.push(res.validHost);
    })(),
  );
  t.deepEqual(seen, ["a:1", "b:2", "c:3"]);
  t.is(err.code, Code.FailedPrecondition);
  t.is(err.rawMessage, "stopped on request");
});

test("a request message over the server's limit is ResourceExhausted", async (t) => {
  const { grpcTransport } = await serveWith(t, [directCheck], { readMaxBytes: 1024 });
  const err = await connectErrorOf(createClient(Health, grpcTransport).check({ service: "x".repeat(4096) }));
  t.is(err.code, Code.ResourceExhausted);
});

test("shutting the server down aborts a direct call's signal, and the handler's own status reaches the caller", async (t) => {
  let aborted: ConnectError | undefined;
  const route: DirectRoute = {
    method: ServerReflection.method.serverReflectionInfo,
    async handle(call) {
      call.send([toBinary(ServerReflectionResponseSchema, create(ServerReflectionResponseSchema, { validHost: "open" }))]);
      await new Promise((r) => call.signal.addEventListener("abort", r, { once: true }));
      aborted = ConnectError.from(call.signal.reason);
      call.end(new ConnectError("going away; reconnect", Code.FailedPrecondition));
    },
  };
  const { server, grpcTransport } = await serveWith(t, [route]);
  const client = createClient(ServerReflection, grpcTransport);
  async function* idle() {
    yield { host: "x", messageRequest: { case: "listServices" as const, value: "" } };
    await new Promise(() => undefined);
  }
  const it = client.serverReflectionInfo(idle())[Symbol.asyncIterator]();
  t.is((await it.next()).value?.validHost, "open");
  const closing = server.close(2_000);
  const err = await connectErrorOf(it.next());
  await closing;
  t.is(aborted?.code, Code.Unavailable);
  t.is(err.code, Code.FailedPrecondition);
});

test("a caller that goes away aborts the handler's signal and fails its pending read", async (t) => {
  let readFailure: ConnectError | undefined;
  let signalled!: () => void;
  const done = new Promise<void>((r) => (signalled = r));
  const route: DirectRoute = {
    method: ServerReflection.method.serverReflectionInfo,
    async handle(call) {
      await call.read();
      call.send([toBinary(ServerReflectionResponseSchema, create(ServerReflectionResponseSchema, { validHost: "first" }))]);
      try {
        await call.read();
      } catch (e) {
        readFailure = ConnectError.from(e);
      }
      t.true(call.signal.aborted);
      signalled();
    },
  };
  const { grpcTransport } = await serveWith(t, [route]);
  const abort = new AbortController();
  async function* oneThenWait() {
    yield { host: "x", messageRequest: { case: "listServices" as const, value: "" } };
    await new Promise(() => undefined);
  }
  const it = createClient(ServerReflection, grpcTransport).serverReflectionInfo(oneThenWait(), { signal: abort.signal })[Symbol.asyncIterator]();
  t.is((await it.next()).value?.validHost, "first");
  abort.abort();
  await done;
  t.is(readFailure?.code, Code.Aborted);
});
