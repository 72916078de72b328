import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { Code } from "@connectrpc/connect";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { create, toBinary } from "@bufbuild/protobuf";
import { CreateModelRequestSchema, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { AuthService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { grpcFrame, rawHttp2 } from "@flip/shared/testing/raw-http.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../support/test-hub.js";

const MiB = 1024 * 1024;

let hub: TestHub;

test.before(async () => {
  hub = await startTestHub();
});

test.after.always(async () => {
  await hub?.close();
});

/** Calls a unary hub RPC with a plain @grpc/grpc-js client (raw bytes in and out) and returns its error status. */
async function grpcJsError(path: string, request: Uint8Array, token?: string): Promise<grpc.ServiceError> {
  const client = new grpc.Client(`127.0.0.1:${hub.hub.port}`, grpc.credentials.createInsecure());
  try {
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    return await new Promise<grpc.ServiceError>((resolve, reject) =>
      client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(request), metadata, (e) => (e ? resolve(e) : reject(new Error("expected the call to fail")))),
    );
  } finally {
    client.close();
  }
}

test("a grpc-js client reads the hub's refusal of an expired or unknown token as written, commas and all", async (t) => {
  const e = await grpcJsError("/flip.hub.v1.AuthService/WhoAmI", new Uint8Array(0), "not-a-real-token");
  t.is(e.code, grpc.status.UNAUTHENTICATED);
  t.is(e.details, "the token is not valid (expired, revoked or unknown); sign in again");
});

test("a call without a credential is refused on its headers: nothing of its body is decoded, even a large upload", async (t) => {
  const model = toBinary(CreateModelRequestSchema, create(CreateModelRequestSchema, { name: "m", initialWeights: new Uint8Array(40 * MiB) }));
  const viaGrpcJs = await grpcJsError("/flip.hub.v1.ModelService/CreateModel", model);
  t.is(viaGrpcJs.code, grpc.status.UNAUTHENTICATED);
  t.is(viaGrpcJs.details, "sign in first: send 'Authorization: Bearer <token>'");
  const viaConnect = await connectErrorOf(hub.client(ModelService).createModel({ name: "m", initialWeights: new Uint8Array(8 * MiB) }));
  t.is(viaConnect.code, Code.Unauthenticated, viaConnect.message);

  // Over the 1 MiB cap of an ordinary RPC, yet Unauthenticated rather than ResourceExhausted: refused before reading.
  const project = await connectErrorOf(hub.client(ProjectService).createProject({ name: "p", description: "x".repeat(2 * MiB) }));
  t.is(project.code, Code.Unauthenticated, project.message);

  // The trust-key routes served straight on HTTP/2 are refused the same way.
  const upload = await rawHttp2(hub.hub.url, "/flip.link.v1.ArtifactService/Upload", { "content-type": "application/grpc", te: "trailers" }, grpcFrame(new Uint8Array(MiB)));
  t.is(upload.headers["grpc-status"], String(Code.Unauthenticated));
  t.is(decodeURI(String(upload.headers["grpc-message"])), "send the trust API key as 'Authorization: Bearer <key>'");

  // Sign-in needs no credential, and reaches its handler.
  const login = await connectErrorOf(hub.client(AuthService).login({ email: "nobody@hub.test", password: "wrong" }));
  t.false(login.rawMessage.startsWith("sign in first"), login.rawMessage);
});

test("only the upload RPCs take large messages: a 2 MiB project is refused, a 2 MiB model is read", async (t) => {
  const project = await connectErrorOf(hub.client(ProjectService, BOOTSTRAP_TOKEN).createProject({ name: "p", description: "x".repeat(2 * MiB) }));
  t.is(project.code, Code.ResourceExhausted);
  const model = await connectErrorOf(hub.client(ModelService, BOOTSTRAP_TOKEN).createModel({ projectId: "none", name: "m", initialWeights: new Uint8Array(2 * MiB) }));
  t.not(model.code, Code.ResourceExhausted);
});

test("a hub request body that does not decode answers InvalidArgument", async (t) => {
  const e = await grpcJsError("/flip.hub.v1.AuthService/Login", Buffer.from([0x0a, 0x05, 0x41]));
  t.is(e.code, grpc.status.INVALID_ARGUMENT);
});
