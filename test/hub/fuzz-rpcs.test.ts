import { randomUUID } from "node:crypto";
import * as http2 from "node:http2";
import anyTest, { type TestFn } from "ava";
import type { DescMethod, DescMessage } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "@flip/gen/health/v1/health_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { ConnectRequestSchema, TaskErrorCode } from "@flip/gen/flip/link/v1/link_pb.js";
import { hubServices, policies } from "@flip/hub/auth/policies.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { grpcFrame, rawHttp1 } from "@flip/shared/testing/raw-http.js";
import { ERROR_LEVEL, startLoggedHub, type LoggedHub } from "./logged-hub.js";
import { Prng, randomBinaryBody, randomJsonBody, randomMessage } from "./random-requests.js";
import { RawLink } from "../support/raw-link.js";

/**
 * Sends every public RPC of the hub random and damaged requests: binary protobuf over gRPC (which
 * reaches the link's direct routes too) and over Connect, and Connect JSON with wrong types and huge
 * values over HTTP/1.1; each with and without credentials. No answer may be Internal or Unknown, no
 * error may be logged, and the hub must still be SERVING afterwards. Seeded, so a failure replays:
 * FLIP_FUZZ_SEED picks the run, FLIP_FUZZ_ROUNDS and FLIP_FUZZ_LINKS make it deeper.
 */

const SEED = Number(process.env.FLIP_FUZZ_SEED ?? 20261130);
/** Requests per RPC, protocol and credential; raise it for a deeper run. */
const ROUNDS = Number(process.env.FLIP_FUZZ_ROUNDS ?? 6);
/** Requests in flight at once. */
const PARALLEL = 8;

interface Ctx {
  logged: LoggedHub;
}
const test = anyTest as TestFn<Ctx>;

type Protocol = "grpc" | "connect-proto" | "connect-json";

/** The outcome of one request: a Connect code name ("ok", "invalid_argument", …) or what came instead. */
interface Answer {
  code: string;
  detail: string;
}

/** Codes a handler answers only when something went wrong on the server, never for bad input. */
const SERVER_FAULTS = new Set(["internal", "unknown", "data_loss"]);

const GRPC_CODES = ["ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"];

const isStreaming = (m: DescMethod) => m.methodKind !== "unary";

/** The end-of-stream message of a Connect streaming answer: `{}` or `{"error":{"code":…}}`. */
function connectStreamEnd(body: Buffer): Answer {
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const len = body.readUInt32BE(at + 1);
    const payload = body.subarray(at + 5, at + 5 + len);
    at += 5 + len;
    if (flags & 0b10) {
      const end = JSON.parse(payload.toString()) as { error?: { code?: string; message?: string } };
      return end.error ? { code: end.error.code ?? "unknown", detail: end.error.message ?? "" } : { code: "ok", detail: "" };
    }
  }
  return { code: "no end-of-stream", detail: body.subarray(0, 200).toString() };
}

function connectUnaryAnswer(status: number, body: Buffer): Answer {
  if (status === 200) return { code: "ok", detail: "" };
  try {
    const err = JSON.parse(body.toString()) as { code?: string; message?: string };
    return { code: err.code ?? `http ${status}`, detail: err.message ?? "" };
  } catch {
    return { code: `http ${status}`, detail: body.subarray(0, 200).toString() };
  }
}

const CONTENT_TYPES: Record<Protocol, { unary: string; streaming: string }> = {
  grpc: { unary: "application/grpc", streaming: "application/grpc" },
  "connect-proto": { unary: "application/proto", streaming: "application/connect+proto" },
  "connect-json": { unary: "application/json", streaming: "application/connect+json" },
};

/** One call over HTTP/2. */
function callH2(session: http2.ClientHttp2Session, method: DescMethod, protocol: Protocol, body: Uint8Array, token: string | undefined): Promise<Answer> {
  const streaming = isStreaming(method);
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": `/${method.parent.typeName}/${method.name}`,
    "content-type": CONTENT_TYPES[protocol][streaming ? "streaming" : "unary"],
    ...(protocol === "grpc" ? { te: "trailers" } : {}),
    ...(protocol !== "grpc" && !streaming ? { "connect-protocol-version": "1" } : {}),
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
  return new Promise((resolve) => {
    const stream = session.request(headers);
    const chunks: Buffer[] = [];
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage = "";
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) [grpcStatus, grpcMessage] = [String(h["grpc-status"]), decodeURIComponent(String(h["grpc-message"] ?? ""))];
    });
    stream.on("trailers", (h) => {
      if (h["grpc-status"] !== undefined) [grpcStatus, grpcMessage] = [String(h["grpc-status"]), decodeURIComponent(String(h["grpc-message"] ?? ""))];
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (e) => resolve({ code: "stream error", detail: e.message }));
    stream.on("close", () => {
      const all = Buffer.concat(chunks);
      if (protocol === "grpc") resolve(grpcStatus !== undefined ? { code: GRPC_CODES[Number(grpcStatus)] ?? grpcStatus, detail: grpcMessage } : { code: `http ${status}`, detail: "no grpc-status" });
      else if (streaming && status === 200) resolve(connectStreamEnd(all));
      else resolve(connectUnaryAnswer(status, all));
    });
    stream.end(protocol === "grpc" || streaming ? grpcFrame(body) : Buffer.from(body));
  });
}

/** One Connect JSON call over HTTP/1.1, the way a browser or curl sends it. */
async function callJson(baseUrl: string, method: DescMethod, json: string, token: string | undefined): Promise<Answer> {
  const streaming = isStreaming(method);
  const headers = { "content-type": streaming ? "application/connect+json" : "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
  try {
    const res = await rawHttp1(baseUrl, `/${method.parent.typeName}/${method.name}`, headers, streaming ? grpcFrame(Buffer.from(json)) : Buffer.from(json));
    return streaming && res.status === 200 ? connectStreamEnd(res.body) : connectUnaryAnswer(res.status, res.body);
  } catch (e) {
    return { code: "request error", detail: e instanceof Error ? e.message : String(e) };
  }
}

/** Runs `tasks` with at most `n` in flight. */
async function inParallel(n: number, tasks: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < tasks.length) await tasks[next++]!();
  }));
}

test.before(async (t) => {
  t.context = { logged: await startLoggedHub() };
});

test.after.always(async (t) => {
  await t.context.logged?.close();
});

/** Error-level log lines. */
function unexpectedErrors(logged: LoggedHub) {
  return logged.lines.filter((l) => l.level >= ERROR_LEVEL);
}

test.serial("random and damaged requests to every public RPC never get Internal, and the hub stays healthy", async (t) => {
  const { logged } = t.context;
  const { adminToken, trustKey } = logged;
  const rng = new Prng(SEED);
  const session = http2.connect(logged.hub.url);
  t.teardown(() => session.close());
  const faults: string[] = [];
  const tasks: (() => Promise<void>)[] = [];
  for (const method of hubServices.flatMap((s) => s.methods)) {
    const rpc = `${method.parent.typeName}/${method.name}`;
    const credential = policies[rpc] === "trust-key" ? trustKey : adminToken;
    for (const protocol of ["grpc", "connect-proto", "connect-json"] as const) {
      for (const token of [undefined, credential]) {
        for (let i = 0; i < ROUNDS; i++) {
          // Bodies are drawn now, in a fixed order, so the seed alone decides every request.
          const label = `${rpc} ${protocol} ${token ? "with" : "without"} credentials #${i}`;
          if (protocol === "connect-json") {
            const json = randomJsonBody(rng, method.input);
            // Bidirectional streams need HTTP/2 (HTTP/1.1 gets 505, rightly); the rest go over HTTP/1.1 like curl.
            if (method.methodKind === "bidi_streaming") tasks.push(async () => record(label, await callH2(session, method, protocol, Buffer.from(json), token)));
            else tasks.push(async () => record(label, await callJson(logged.hub.url, method, json, token)));
          } else {
            const body = randomBinaryBody(rng, method.input);
            tasks.push(async () => record(label, await callH2(session, method, protocol, body, token)));
          }
        }
      }
    }
  }
  const seen = new Map<string, number>();
  function record(label: string, a: Answer) {
    const tally = `${label.includes(" without ") ? "anonymous" : "signed"} ${a.code}`;
    seen.set(tally, (seen.get(tally) ?? 0) + 1);
    const fault = SERVER_FAULTS.has(a.code) || !GRPC_CODES.includes(a.code);
    if (fault) faults.push(`${label}: ${a.code}: ${a.detail}`);
  }
  await inParallel(PARALLEL, tasks);
  t.log(`${tasks.length} requests (seed ${SEED}):`, Object.fromEntries(seen));
  const errors = unexpectedErrors(logged);
  for (const e of errors) t.log(JSON.stringify(e).slice(0, 2000));
  t.deepEqual(faults, []);

  const health = createClient(Health, createGrpcTransport({ baseUrl: logged.hub.url }));
  t.is((await health.check({})).status, ServingStatus.SERVING);
  t.deepEqual(errors.map((l) => `${l.msg} ${JSON.stringify(l).slice(0, 300)}`), [], "bad input must not be logged as an error");
});

/** Links opened per protocol, and random messages sent on each after its Hello. */
const LINKS = Number(process.env.FLIP_FUZZ_LINKS ?? 8);
const MESSAGES_PER_LINK = 4;

test.serial("a trust's link given random messages after its Hello ends, if at all, with the gateway's fault, never the hub's", async (t) => {
  const { logged } = t.context;
  const rng = new Prng(SEED + 1);
  const trusts = createClient(TrustService, createGrpcTransport({ baseUrl: logged.hub.url, interceptors: [bearerAuth(logged.adminToken)] }));
  const kinds = ConnectRequestSchema.fields.filter((f) => f.oneof?.name === "message" && f.localName !== "hello");
  const ends: string[] = [];
  for (const protocol of ["grpc", "connect"] as const) {
    for (let i = 0; i < LINKS; i++) {
      // A trust of its own per link, so no link waits for the last one to be released.
      const code = `fuzz-${protocol}-${i}`;
      const { apiKey } = await trusts.registerTrust({ name: `${code} hospital`, code, region: "test" });
      const link = RawLink.open(logged.hub.url, apiKey, { trustCode: code }, protocol);
      try {
        await link.next("welcome", 60_000);
        for (let m = 0; m < MESSAGES_PER_LINK; m++) {
          const kind = rng.pick(kinds);
          const value = randomMessage(rng, kind.message as DescMessage, rng.chance(0.9) ? "plausible" : "hostile").message;
          link.send({ case: kind.localName, value } as Parameters<RawLink["send"]>[0]);
        }
        // A result for a task the hub does not know is acknowledged as not recorded: once it is, every message before it was handled.
        const marker = randomUUID();
        link.send({ case: "result", value: { taskId: marker, attempt: 1, outcome: { case: "error", value: { code: TaskErrorCode.INTERNAL, message: "fuzz marker" } } } });
        // A refused message ends the stream with InvalidArgument.
        const outcome = await link.next("resultAck", 60_000, (a) => a.taskId === marker).then(
          () => "handled",
          async () => {
            const end = await link.ended(60_000);
            return end ? Code[end.code] : "ended cleanly";
          },
        );
        ends.push(outcome);
        const why = () => unexpectedErrors(logged).map((l) => JSON.stringify(l).slice(0, 1500)).join("\n");
        t.false(outcome === "Internal" || outcome === "Unknown" || outcome === "Unavailable", `${code}: the link ended with ${outcome}; hub errors: ${why()}`);
      } finally {
        link.close();
      }
    }
  }
  t.log(`link outcomes (seed ${SEED + 1}):`, ends);
  const errors = unexpectedErrors(logged);
  for (const e of errors) t.log(JSON.stringify(e).slice(0, 2000));
  t.deepEqual(errors.map((l) => `${l.msg} ${JSON.stringify(l).slice(0, 300)}`), [], "bad input must not be logged as an error");
});
