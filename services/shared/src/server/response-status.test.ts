import test, { type ExecutionContext } from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { GetUploadStatusRequestSchema, ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import { createLogger } from "../logging/logger.js";
import { grpcFrame, rawHttp1, rawHttp2 } from "../testing/raw-http.js";
import type { DirectRoute } from "../direct/direct-routes.js";
import { encodeGrpcMessage } from "./grpc-message.js";
import { serve } from "./serve.js";

/** A status message with what percent-encoding mangles: commas, a colon, a slash, a percent sign, non-ASCII. */
const AWKWARD = "expired, revoked: see /docs; 100% naïve — café ✓";

/** Protobuf that does not decode: field 1 announces 5 bytes and 1 follows. */
const GARBAGE = Buffer.from([0x0a, 0x05, 0x41]);

const GET_UPLOAD_STATUS = "/flip.link.v1.ArtifactService/GetUploadStatus";

/** Serves ArtifactService.GetUploadStatus (refusing with AWKWARD) through Connect, and Download on the direct path. */
async function start(t: ExecutionContext) {
  const log = createLogger({ service: "test", level: "silent" });
  const direct: DirectRoute = {
    method: ArtifactService.method.download,
    async handle() {
      throw new ConnectError(AWKWARD, Code.FailedPrecondition);
    },
  };
  const server = await serve({
    host: "127.0.0.1",
    port: 0,
    services: [ArtifactService],
    routes(router) {
      router.service(ArtifactService, {
        getUploadStatus() {
          throw new ConnectError(AWKWARD, Code.FailedPrecondition);
        },
      });
    },
    direct: [direct],
    log,
  });
  t.teardown(() => server.close(500));
  return server;
}

/** Calls `method` with a plain @grpc/grpc-js client and returns the status it reports. */
async function grpcJsStatus(t: ExecutionContext, port: number, method: DescMethod, request: Uint8Array): Promise<grpc.ServiceError> {
  const path = `/${method.parent.typeName}/${method.name}`;
  const streaming = method.methodKind === "server_streaming";
  const Ctor = grpc.makeGenericClientConstructor(
    {
      call: {
        path,
        requestStream: false,
        responseStream: streaming,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    "Raw",
  );
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
  t.teardown(() => client.close());
  return await new Promise<grpc.ServiceError>((resolve, reject) => {
    if (streaming) {
      const call = client.makeServerStreamRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(request));
      call.on("data", () => reject(new Error("expected no messages")));
      call.on("error", (e: grpc.ServiceError) => resolve(e));
      call.on("end", () => reject(new Error("expected an error status")));
    } else {
      client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(request), (e) => (e ? resolve(e) : reject(new Error("expected an error status"))));
    }
  });
}

test("a grpc-js client shows a status message exactly as the server wrote it, through Connect's handler and the direct path", async (t) => {
  const server = await start(t);
  const request = toBinary(GetUploadStatusRequestSchema, create(GetUploadStatusRequestSchema, { artifactId: "a" }));
  const viaConnect = await grpcJsStatus(t, server.port, ArtifactService.method.getUploadStatus, request);
  t.is(viaConnect.code, grpc.status.FAILED_PRECONDITION);
  t.is(viaConnect.details, AWKWARD);
  const viaDirect = await grpcJsStatus(t, server.port, ArtifactService.method.download, request);
  t.is(viaDirect.code, grpc.status.FAILED_PRECONDITION);
  t.is(viaDirect.details, AWKWARD);
});

test("the gRPC message encoding escapes only the percent sign and bytes outside printable ASCII, and both decoders read it back", (t) => {
  const encoded = encodeGrpcMessage(AWKWARD);
  t.is(encoded, "expired, revoked: see /docs; 100%25 na%C3%AFve %E2%80%94 caf%C3%A9 %E2%9C%93");
  t.is(decodeURI(encoded), AWKWARD);
  t.is(decodeURIComponent(encoded), AWKWARD);
});

test("a request body that does not decode answers InvalidArgument over gRPC, gRPC-Web and Connect, binary and JSON", async (t) => {
  const server = await start(t);
  const grpcAnswer = await rawHttp2(server.url, GET_UPLOAD_STATUS, { "content-type": "application/grpc", te: "trailers" }, grpcFrame(GARBAGE));
  t.is(grpcAnswer.trailers["grpc-status"] ?? grpcAnswer.headers["grpc-status"], String(Code.InvalidArgument));
  t.regex(decodeURI(String(grpcAnswer.trailers["grpc-message"])), /^parse binary: /);

  const grpcWeb = await rawHttp1(server.url, GET_UPLOAD_STATUS, { "content-type": "application/grpc-web+proto" }, grpcFrame(GARBAGE));
  t.regex(grpcWeb.body.toString("latin1"), new RegExp(`grpc-status: ${Code.InvalidArgument}\\r\\n`));

  for (const send of [rawHttp1, rawHttp2]) {
    const binary = await send(server.url, GET_UPLOAD_STATUS, { "content-type": "application/proto", "connect-protocol-version": "1" }, GARBAGE);
    t.is(binary.status, 400);
    t.is(JSON.parse(binary.body.toString()).code, "invalid_argument");
    const json = await send(server.url, GET_UPLOAD_STATUS, { "content-type": "application/json", "connect-protocol-version": "1" }, Buffer.from('{"artifactId": '));
    t.is(json.status, 400);
    t.is(JSON.parse(json.body.toString()).code, "invalid_argument");
  }

  const stream = await rawHttp2(server.url, "/flip.link.v1.ArtifactService/Download", { "content-type": "application/connect+proto", "connect-protocol-version": "1" }, grpcFrame(GARBAGE));
  t.is(JSON.parse(stream.body.subarray(5).toString()).error.code, "invalid_argument");
});

test("a request that decodes still reaches the handler, and its own error code is kept", async (t) => {
  const server = await start(t);
  const ok = toBinary(GetUploadStatusRequestSchema, create(GetUploadStatusRequestSchema, { artifactId: "a" }));
  const answer = await rawHttp1(server.url, GET_UPLOAD_STATUS, { "content-type": "application/proto", "connect-protocol-version": "1" }, ok);
  t.is(JSON.parse(answer.body.toString()).code, "failed_precondition");
  t.is(JSON.parse(answer.body.toString()).message, AWKWARD);
});
