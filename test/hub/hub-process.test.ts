import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import anyTest, { type TestFn } from "ava";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, toJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import {
  LinkStatus,
  ListTrustsRequestSchema,
  ListTrustsResponseSchema,
  RegisterTrustRequestSchema,
  RegisterTrustResponseSchema,
  TrustService,
} from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { repoRoot } from "../support/processes.js";
import { ADMIN_TOKEN, startHubProc, type HubProc } from "../support/link.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";


interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  admin: Client<typeof TrustService>;
  anonymous: Client<typeof TrustService>;
}
const test = anyTest as TestFn<Ctx>;

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

test.before(async (t) => {
  const db = await createTestDatabase("hub");
  const hub = await startHubProc({ databaseUrl: db.url });
  const transport = createGrpcTransport({ baseUrl: hub.url });
  const admin = createClient(TrustService, createGrpcTransport({
    baseUrl: hub.url,
    interceptors: [bearerAuth(ADMIN_TOKEN)],
  }));
  t.context = { db, hub, admin, anonymous: createClient(TrustService, transport) };
});

test.after.always(async (t) => {
  await t.context.hub?.proc.stop();
  await t.context.db?.drop();
});

async function connectError(t: { fail(m: string): void }, p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  t.fail("expected the call to fail");
  throw new Error("unreachable");
}

test.serial("an admin registers a trust over gRPC and gets its API key exactly once", async (t) => {
  const res = await t.context.admin.registerTrust({ name: "Guy's and St Thomas'", code: "gstt", region: "london" });
  t.is(res.trust?.code, "gstt");
  t.is(res.trust?.linkStatus, LinkStatus.NEVER_CONNECTED);
  t.regex(res.apiKey, /^flip_trust_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.true(res.apiKey.includes(res.trust!.keyId));
  const listed = await t.context.admin.listTrusts({});
  t.deepEqual(listed.trusts.map((x) => x.code), ["gstt"]);
  t.is(toJsonString(ListTrustsResponseSchema, listed).includes(res.apiKey), false, "the key is never shown again");
});

test.serial("a Connect JSON client over HTTP/1.1 reaches the same hub on the same port", async (t) => {
  const client = createClient(TrustService, createConnectTransport({ baseUrl: t.context.hub.url, httpVersion: "1.1" }));
  const res = await client.listTrusts({}, bearer(ADMIN_TOKEN));
  t.true(res.trusts.some((x) => x.code === "gstt"));
});

test.serial("a plain @grpc/grpc-js client registers and lists trusts with generated schemas", async (t) => {
  const ser = <D extends DescMessage>(d: D) => (m: MessageShape<D>) => Buffer.from(toBinary(d, m));
  const de = <D extends DescMessage>(d: D) => (b: Buffer) => fromBinary(d, b);
  const Ctor = grpc.makeGenericClientConstructor(
    {
      RegisterTrust: {
        path: "/flip.hub.v1.TrustService/RegisterTrust",
        requestStream: false,
        responseStream: false,
        requestSerialize: ser(RegisterTrustRequestSchema),
        requestDeserialize: de(RegisterTrustRequestSchema),
        responseSerialize: ser(RegisterTrustResponseSchema),
        responseDeserialize: de(RegisterTrustResponseSchema),
      },
      ListTrusts: {
        path: "/flip.hub.v1.TrustService/ListTrusts",
        requestStream: false,
        responseStream: false,
        requestSerialize: ser(ListTrustsRequestSchema),
        requestDeserialize: de(ListTrustsRequestSchema),
        responseSerialize: ser(ListTrustsResponseSchema),
        responseDeserialize: de(ListTrustsResponseSchema),
      },
    },
    "TrustService",
  );
  const client = new Ctor(`127.0.0.1:${t.context.hub.port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${ADMIN_TOKEN}`);
  const call = <T>(method: string, req: unknown, meta: grpc.Metadata) =>
    new Promise<T>((resolve, reject) => {
      (client as unknown as Record<string, (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, v: T) => void) => void>)[method]!(
        req,
        meta,
        (e, v) => (e ? reject(e) : resolve(v)),
      );
    });
  const reg = await call<{ trust?: { code: string } }>("RegisterTrust", { $typeName: "flip.hub.v1.RegisterTrustRequest", name: "King's College Hospital", code: "kch", region: "london" }, md);
  t.is(reg.trust?.code, "kch");
  const err = await call("ListTrusts", { $typeName: "flip.hub.v1.ListTrustsRequest" }, new grpc.Metadata()).catch((e: grpc.ServiceError) => e);
  t.is((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
  client.close();
});

test.serial("buf curl lists the hub's services by reflection and answers a health check", async (t) => {
  const run = promisify(execFile);
  const buf = path.join(repoRoot, "node_modules/.bin/buf");
  const list = await run(buf, ["curl", "--http2-prior-knowledge", "--list-services", t.context.hub.url]);
  for (const s of ["flip.hub.v1.TrustService", "flip.link.v1.LinkService", "grpc.health.v1.Health", "flip.hub.v1.CohortService"]) {
    t.true(list.stdout.includes(s), `${s} listed`);
  }
  const health = await run(buf, ["curl", "--http2-prior-knowledge", "--protocol", "grpc", "-d", "{}", `${t.context.hub.url}/grpc.health.v1.Health/Check`]);
  t.deepEqual(JSON.parse(health.stdout), { status: "SERVING" });
  const trusts = await run(buf, [
    "curl", "--http2-prior-knowledge", "-H", `Authorization: Bearer ${ADMIN_TOKEN}`, "-d", "{}", `${t.context.hub.url}/flip.hub.v1.TrustService/ListTrusts`,
  ]);
  t.true((JSON.parse(trusts.stdout) as { trusts: { code: string }[] }).trusts.some((x) => x.code === "gstt"));
});

test.serial("a missing or wrong admin token is Unauthenticated with a message saying what to send", async (t) => {
  const missing = await connectError(t, t.context.anonymous.registerTrust({ name: "Nowhere", code: "nowhere" }));
  t.is(missing.code, Code.Unauthenticated);
  t.regex(missing.rawMessage, /Authorization: Bearer/);
  const wrong = await connectError(t, t.context.anonymous.registerTrust({ name: "Nowhere", code: "nowhere" }, bearer("not-the-admin-token")));
  t.is(wrong.code, Code.Unauthenticated);
});

test.serial("bad input is InvalidArgument naming the field", async (t) => {
  const noName = await connectError(t, t.context.admin.registerTrust({ code: "abc" }));
  t.is(noName.code, Code.InvalidArgument);
  t.regex(noName.rawMessage, /^name:/);
  const badCode = await connectError(t, t.context.admin.registerTrust({ name: "A Trust", code: "Bad Code!" }));
  t.is(badCode.code, Code.InvalidArgument);
  t.regex(badCode.rawMessage, /^code:/);
  const noTrust = await connectError(t, t.context.admin.getTrust({ trust: "" }));
  t.is(noTrust.code, Code.InvalidArgument);
  const badPage = await connectError(t, t.context.admin.listTrusts({ page: { pageToken: "garbage" } }));
  t.is(badPage.code, Code.InvalidArgument);
  t.regex(badPage.rawMessage, /page_token/);
});

test.serial("duplicate names and codes are AlreadyExists and name the clash", async (t) => {
  const dupCode = await connectError(t, t.context.admin.registerTrust({ name: "Another", code: "gstt" }));
  t.is(dupCode.code, Code.AlreadyExists);
  t.regex(dupCode.rawMessage, /code "gstt"/);
  const dupName = await connectError(t, t.context.admin.registerTrust({ name: "Guy's and St Thomas'", code: "gstt2" }));
  t.is(dupName.code, Code.AlreadyExists);
  t.regex(dupName.rawMessage, /name/);
});

test.serial("unknown trust ids and codes are NotFound", async (t) => {
  const byCode = await connectError(t, t.context.admin.rotateTrustKey({ trust: "no-such-trust" }));
  t.is(byCode.code, Code.NotFound);
  t.regex(byCode.rawMessage, /no-such-trust/);
  const byId = await connectError(t, t.context.admin.disableTrust({ trust: "00000000-0000-4000-8000-000000000000" }));
  t.is(byId.code, Code.NotFound);
});

test.serial("rotating a key issues a new one and disabling and enabling are idempotent", async (t) => {
  const before = (await t.context.admin.getTrust({ trust: "gstt" })).trust!;
  const rotated = await t.context.admin.rotateTrustKey({ trust: "gstt" });
  t.not(rotated.trust?.keyId, before.keyId);
  t.true(rotated.apiKey.includes(rotated.trust!.keyId));
  t.true((await t.context.admin.disableTrust({ trust: "gstt", reason: "maintenance" })).trust!.disabled);
  t.true((await t.context.admin.disableTrust({ trust: "gstt" })).trust!.disabled);
  t.false((await t.context.admin.listTrusts({})).trusts.some((x) => x.code === "gstt"), "disabled trusts are hidden by default");
  t.true((await t.context.admin.listTrusts({ includeDisabled: true })).trusts.some((x) => x.code === "gstt"));
  t.false((await t.context.admin.enableTrust({ trust: "gstt" })).trust!.disabled);
});

test.serial("training RPCs answer from real data: models of a project that does not exist are NotFound, not an empty list", async (t) => {
  const models = createClient(ModelService, createGrpcTransport({ baseUrl: t.context.hub.url }));
  const err = await connectError(t, models.listModels({ projectId: "00000000-0000-4000-8000-000000000000" }, bearer(ADMIN_TOKEN)));
  t.is(err.code, Code.NotFound);
  t.regex(err.rawMessage, /project "00000000-0000-4000-8000-000000000000" not found/);
});

test.serial("SIGTERM stops the hub cleanly with exit code 0", async (t) => {
  const db = await createTestDatabase("hub_stop");
  const hub = await startHubProc({ databaseUrl: db.url });
  const exit = await hub.proc.stop();
  t.deepEqual(exit, { code: 0, signal: null });
  t.true(hub.proc.logs.some((r) => r.msg === "shutting down"));
  await db.drop();
});
