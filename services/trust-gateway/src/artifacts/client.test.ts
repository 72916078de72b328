import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  ArtifactService,
  DownloadRequestSchema,
  DownloadResponseSchema,
  GetUploadStatusRequestSchema,
  GetUploadStatusResponseSchema,
  UploadRequestSchema,
  UploadResponseSchema,
  type UploadRequest,
} from "@flip/gen/flip/link/v1/link_pb.js";
import { startTelemetry, stopTelemetry } from "@flip/shared/telemetry/sdk.js";
import { tracer } from "@flip/shared/telemetry/trace-context.js";
import { createArtifactClient } from "./client.js";
import { downloadArtifact } from "./download.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { uploadArtifact } from "./upload.js";

/**
 * The gateway's client against a plain @grpc/grpc-js server of ArtifactService (not the hub): it must
 * speak gRPC as any server does, including messages whose fields come in another order than the hub's.
 */

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Ctx {
  server: grpc.Server;
  port: number;
  dir: string;
  /** Artifacts the fake server holds, by id. */
  stored: Map<string, Buffer>;
}

/** The authorization and traceparent headers of the last call the fake server received. */
let lastAuthorization: string | undefined;
let lastTraceparent: string | undefined;
const test = anyTest as TestFn<Ctx>;

function method<I extends DescMessage, O extends DescMessage>(name: string, input: I, output: O, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/${ArtifactService.typeName}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<O>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

const definition = {
  upload: method("Upload", UploadRequestSchema, UploadResponseSchema, true, false),
  getUploadStatus: method("GetUploadStatus", GetUploadStatusRequestSchema, GetUploadStatusResponseSchema, false, false),
  download: method("Download", DownloadRequestSchema, DownloadResponseSchema, false, true),
};

/** A minimal ArtifactService: keeps uploads in memory, checks the finish checksum, serves downloads in 100 KB chunks. */
function fakeService(ctx: Ctx): grpc.UntypedServiceImplementation {
  const remember = (md: grpc.Metadata) => {
    lastAuthorization = String(md.get("authorization")[0] ?? "");
    lastTraceparent = String(md.get("traceparent")[0] ?? "");
  };
  return {
    getUploadStatus(call: grpc.ServerUnaryCall<{ artifactId: string }, unknown>, done: grpc.sendUnaryData<unknown>) {
      remember(call.metadata);
      const data = ctx.stored.get(call.request.artifactId);
      if (!data) return done({ code: grpc.status.NOT_FOUND, details: `no artifact ${call.request.artifactId}` });
      done(null, create(GetUploadStatusResponseSchema, { artifactId: call.request.artifactId, storedBytes: BigInt(data.length), sizeBytes: BigInt(data.length), complete: true }));
    },
    upload(call: grpc.ServerReadableStream<UploadRequest, unknown>, done: grpc.sendUnaryData<unknown>) {
      remember(call.metadata);
      let id = "";
      const parts: Buffer[] = [];
      let finish = "";
      call.on("data", (m: UploadRequest) => {
        if (m.part.case === "begin") id = m.part.value.artifactId;
        if (m.part.case === "chunk") parts.push(Buffer.from(m.part.value.data));
        if (m.part.case === "finish") finish = m.part.value.sha256;
      });
      call.on("end", () => {
        const data = Buffer.concat(parts);
        if (finish !== sha(data)) return done({ code: grpc.status.DATA_LOSS, details: "checksum mismatch" });
        ctx.stored.set(id, data);
        done(null, create(UploadResponseSchema, { artifactId: id, storedBytes: BigInt(data.length), complete: true }));
      });
    },
    download(call: grpc.ServerWritableStream<{ artifactId: string; offset: bigint }, unknown>): void {
      remember(call.metadata);
      const data = ctx.stored.get(call.request.artifactId);
      // Never answers: only a cancel ends it.
      if (call.request.artifactId === "stall") return;
      if (!data) {
        call.emit("error", { code: grpc.status.NOT_FOUND, details: "no such artifact" });
        return;
      }
      const size = BigInt(data.length);
      for (let at = Number(call.request.offset); at < data.length; at += 100_000) {
        // protobuf-es writes fields in number order: offset, data, size_bytes (data is not last).
        call.write(create(DownloadResponseSchema, { offset: BigInt(at), data: data.subarray(at, at + 100_000), sizeBytes: size }));
      }
      call.write(create(DownloadResponseSchema, { offset: size, sizeBytes: size, sha256: sha(data) }));
      call.end();
    },
  };
}

async function startServer(ctx: Ctx, port = 0): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(definition as unknown as grpc.ServiceDefinition, fakeService(ctx));
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, port: bound };
}

test.before(async (t) => {
  const ctx = { stored: new Map(), dir: await mkdtemp(path.join(os.tmpdir(), "flip-artifact-client-")) } as unknown as Ctx;
  Object.assign(ctx, await startServer(ctx));
  t.context = ctx;
});

test.after.always(async (t) => {
  await stopTelemetry();
  t.context.server?.forceShutdown();
  if (t.context.dir) await rm(t.context.dir, { recursive: true, force: true });
});


test.serial("an upload and a download go through a plain gRPC server, with the key as a bearer token", async (t) => {
  const { port, dir } = t.context;
  const client = createArtifactClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "flip_trust_test" });
  t.teardown(() => client.close());
  const bytes = randomBytes(2 * 1024 * 1024 + 3);
  const source = path.join(dir, "up.bin");
  await writeFile(source, bytes);
  const up = await uploadArtifact(client, { artifactId: randomUUID(), purpose: "result", source });
  t.is(up.sha256, sha(bytes));
  t.is(lastAuthorization, "Bearer flip_trust_test");
  const dest = path.join(dir, "down.bin");
  const down = await downloadArtifact(client, up.artifactId, dest);
  t.is(down.sha256, sha(bytes));
  t.true((await readFile(dest)).equals(bytes));
});

test.serial("each call carries the trace context of the span it was made in", async (t) => {
  const { port } = t.context;
  // The test runner disables the SDK for every test process; this one needs spans (exported nowhere).
  process.env.OTEL_SDK_DISABLED = "false";
  process.env.OTEL_TRACES_EXPORTER = "none";
  startTelemetry("artifact-client-test");
  const client = createArtifactClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k" });
  t.teardown(() => client.close());
  t.context.stored.set("traced", Buffer.from("x"));
  const traceId = await tracer.startActiveSpan("upload a result", async (span) => {
    await client.getUploadStatus({ artifactId: "traced" });
    span.end();
    return span.spanContext().traceId;
  });
  t.regex(lastTraceparent ?? "", new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`));
});

test.serial("the status in the trailers becomes the call's Connect code and message", async (t) => {
  const { port } = t.context;
  const client = createArtifactClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k" });
  t.teardown(() => client.close());
  const missing = await connectErrorOf(client.getUploadStatus({ artifactId: "nothing-here" }));
  t.is(missing.code, Code.NotFound);
  t.is(missing.rawMessage, "no artifact nothing-here");
  const gone = await connectErrorOf((async () => {
    for await (const _ of client.download({ artifactId: "nothing-here", offset: 0 }));
  })());
  t.is(gone.code, Code.NotFound);
});

test.serial("an aborted signal cancels a call at once", async (t) => {
  const { port } = t.context;
  const client = createArtifactClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k" });
  t.teardown(() => client.close());
  const abort = new AbortController();
  const stalled = connectErrorOf((async () => {
    for await (const _ of client.download({ artifactId: "stall", offset: 0 }, { signal: abort.signal }));
  })());
  abort.abort();
  t.is((await stalled).code, Code.Canceled);
});

test.serial("a refused connection is Unavailable, and the client dials again once the server is back", async (t) => {
  const ctx = t.context;
  const { server, port } = await startServer(ctx);
  const client = createArtifactClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k" });
  t.teardown(() => client.close());
  ctx.stored.set("there", Buffer.from("x"));
  t.true((await client.getUploadStatus({ artifactId: "there" })).complete);
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  server.forceShutdown();
  const refused = await connectErrorOf(client.getUploadStatus({ artifactId: "there" }));
  t.true(refused.code === Code.Unavailable || refused.code === Code.Aborted, Code[refused.code]);
  const again = await startServer(ctx, port);
  t.teardown(() => again.server.forceShutdown());
  t.true((await client.getUploadStatus({ artifactId: "there" })).complete);
});
