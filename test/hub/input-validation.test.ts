import { createHash, randomUUID } from "node:crypto";
import * as http2 from "node:http2";
import anyTest, { type TestFn } from "ava";
import { create, ScalarType, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ArtifactService, UploadRequestSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { hubServices, policies } from "@flip/hub/auth/policies.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { ruleFor } from "@flip/shared/validation/request-rules.js";
import { RawLink } from "../support/raw-link.js";
import { ERROR_LEVEL, startLoggedHub, type LoggedHub } from "./logged-hub.js";

/**
 * Walks every RPC of every hub service: each string field a request can carry, at any depth, is sent
 * once with a NUL byte, once too long, and (for ids the hub stores as UUIDs) once as a non-UUID. Each
 * must be answered InvalidArgument with a message that starts with the field's path.
 */

interface Ctx {
  logged: LoggedHub;
  call(method: DescMethod, init: Record<string, unknown>): Promise<void>;
}
const test = anyTest as TestFn<Ctx>;

/** RPCs whose requests hold no string at all; nothing to walk. */
const WITHOUT_STRINGS = [
  "flip.hub.v1.AuthService/BeginTotpEnrollment",
  "flip.hub.v1.AuthService/ListApiTokens",
  "flip.hub.v1.AuthService/WhoAmI",
  "flip.hub.v1.AuthService/GetSignInOptions",
  "flip.hub.v1.AuditService/VerifyAuditChain",
  "flip.hub.v1.AdminService/GetDeploymentMode",
  "flip.hub.v1.AdminService/SetDeploymentMode",
  "flip.hub.v1.AdminService/RotateSigningKey",
];

/** Id-named hub fields that take a trust's id or its code, so a non-UUID is valid there. */
const ID_OR_CODE = new Set(["flip.hub.v1.RoleGrant.trust_id", "flip.hub.v1.ListMetricsRequest.trust_id"]);

/** One string field reachable from a request: its path as the error names it, and a request carrying `value` there. */
interface StringSlot {
  path: string;
  field: DescField;
  request(value: string): Record<string, unknown>;
}

/**
 * Every string field reachable from `desc`, through nested messages, oneofs, lists and maps. Each
 * request also carries a valid UUID in the required fields beside the slot, so that the bad value,
 * not a missing sibling, is what gets refused.
 */
function stringSlots(desc: DescMessage, api: string, seen: readonly string[] = []): StringSlot[] {
  if (seen.includes(desc.typeName) || desc.typeName.startsWith("google.protobuf.")) return [];
  const required = Object.fromEntries(desc.fields.filter((f) => f.fieldKind === "scalar" && ruleFor(f, api).required).map((f) => [f.localName, randomUUID()]));
  const slots: StringSlot[] = [];
  for (const field of desc.fields) {
    const wrap = (inner: unknown): Record<string, unknown> => ({
      ...required,
      ...(field.oneof ? { [field.oneof.localName]: { case: field.localName, value: inner } } : { [field.localName]: inner }),
    });
    const isString = (field.fieldKind === "scalar" || field.fieldKind === "list" || field.fieldKind === "map") && field.scalar === ScalarType.STRING;
    if (field.fieldKind === "scalar" && isString) slots.push({ path: field.name, field, request: (v) => wrap(v) });
    if (field.fieldKind === "list" && field.listKind === "scalar" && isString) slots.push({ path: `${field.name}[0]`, field, request: (v) => wrap([v]) });
    if (field.fieldKind === "map" && field.mapKind === "scalar" && isString) slots.push({ path: `${field.name}["k"]`, field, request: (v) => wrap({ k: v }) });
    const nested = field.fieldKind === "message" ? field.message : field.fieldKind === "list" && field.listKind === "message" ? field.message : undefined;
    if (nested) {
      const isList = field.fieldKind === "list";
      for (const inner of stringSlots(nested, api, [...seen, desc.typeName])) {
        slots.push({ path: `${field.name}${isList ? "[0]" : ""}.${inner.path}`, field: inner.field, request: (v) => wrap(isList ? [inner.request(v)] : inner.request(v)) });
      }
    }
  }
  return slots;
}

function badValues(field: DescField, api: string): { what: string; value: string }[] {
  const { maxChars } = ruleFor(field, api);
  const values = [
    { what: "a NUL byte", value: "x\0y" },
    { what: "an escape character", value: "\x1b[2J" },
    ...(Number.isFinite(maxChars) ? [{ what: "a string over its limit", value: "a".repeat(Math.max(3000, maxChars + 1)) }] : []),
  ];
  const name = field.name;
  const full = `${field.parent.typeName}.${name}`;
  const isId = name === "id" || name.endsWith("_id") || name.endsWith("_ids");
  if (field.parent.typeName.startsWith("flip.hub.v1.") && isId && !ID_OR_CODE.has(full)) values.push({ what: "a non-UUID id", value: "not-a-uuid" });
  // Machine-written link text keeps terminal escapes; NUL and length are still refused there.
  return ruleFor(field, api).controls === "nul-only" ? values.filter((v) => v.what !== "an escape character") : values;
}

/** Calls any method with one request message, draining whatever comes back. */
async function callAny(client: Client<DescService>, method: DescMethod, init: Record<string, unknown>): Promise<void> {
  const fn = (client as unknown as Record<string, (req: unknown) => unknown>)[method.localName]!;
  const message = create(method.input, init);
  switch (method.methodKind) {
    case "unary":
      await fn(message);
      return;
    case "server_streaming":
      for await (const _ of fn(message) as AsyncIterable<unknown>);
      return;
    case "client_streaming":
      await fn((async function* () { yield message; })());
      return;
    case "bidi_streaming":
      for await (const _ of fn((async function* () { yield message; })()) as AsyncIterable<unknown>);
      return;
  }
}

test.before(async (t) => {
  const logged = await startLoggedHub();
  // The Connect protocol, so even the link's RPCs go through the router (gRPC callers of those reach direct routes).
  const as = (token: string) => createConnectTransport({ baseUrl: logged.hub.url, httpVersion: "2", interceptors: [bearerAuth(token)] });
  const admin = as(logged.adminToken);
  // The link's streams check the trust key before they read a message, so they are called as a trust.
  const trust = as(logged.trustKey);
  const clientFor = (method: DescMethod) => createClient(method.parent, policies[`${method.parent.typeName}/${method.name}`] === "trust-key" ? trust : admin) as Client<DescService>;
  t.context = { logged, call: (method, init) => callAny(clientFor(method), method, init) };
});

test.after.always(async (t) => {
  await t.context.logged?.close();
});

const methods = hubServices.flatMap((s) => s.methods);
/** The package of an RPC's request, which picks its rules. */
const apiOf = (m: DescMethod) => m.input.file.proto.package;

test("the list of RPCs without string fields is exact", (t) => {
  const without = methods.filter((m) => stringSlots(m.input, apiOf(m)).length === 0).map((m) => `${m.parent.typeName}/${m.name}`);
  t.deepEqual(without.sort(), [...WITHOUT_STRINGS].sort());
});

for (const method of methods.filter((m) => !WITHOUT_STRINGS.includes(`${m.parent.typeName}/${m.name}`))) {
  const rpc = `${method.parent.typeName}/${method.name}`;
  test(`${rpc} answers InvalidArgument naming the field for every bad string`, async (t) => {
    for (const slot of stringSlots(method.input, apiOf(method))) {
      for (const bad of badValues(slot.field, apiOf(method))) {
        let err: ConnectError | undefined;
        try {
          await t.context.call(method, slot.request(bad.value));
        } catch (e) {
          err = ConnectError.from(e);
        }
        const label = `${rpc} ${slot.path} with ${bad.what}`;
        t.is(err?.code, Code.InvalidArgument, `${label}: got ${err ? `${Code[err.code]}: ${err.rawMessage}` : "success"}`);
        t.true(err?.rawMessage.startsWith(`${slot.path}: `), `${label}: the message "${err?.rawMessage}" does not name the field`);
      }
    }
  });
}

test.after("no bad input was logged as an error", (t) => {
  const errors = t.context.logged.lines.filter((l) => l.level >= ERROR_LEVEL);
  t.deepEqual(errors.map((l) => l.msg), []);
});

/*
 * gRPC callers of the link's RPCs reach direct routes that skip serve()'s interceptors; the same rules
 * must hold there, and bad input must not end a link or an upload with Internal.
 */

test("on the link's direct path, a NUL in a progress message ends the link with InvalidArgument naming the field, and no error in the log", async (t) => {
  const link = RawLink.open(t.context.logged.hub.url, t.context.logged.trustKey, { trustCode: "north" });
  t.teardown(() => link.close());
  await link.next("welcome");
  link.send({ case: "progress", value: { taskId: randomUUID(), fraction: 0.5, message: "half\0way" } });
  const end = await link.ended();
  // InvalidArgument tells the gateway the message is at fault, not the hub: it must not send it again.
  t.truthy(end, "the link ended without a status");
  t.is(end?.code, Code.InvalidArgument, end?.message);
  t.true(end?.rawMessage.startsWith("progress.message: "), end?.rawMessage);
  t.deepEqual(t.context.logged.lines.filter((l) => l.level >= ERROR_LEVEL).map((l) => l.msg), []);
});

test("on the artifacts' direct path, a NUL in an upload's task id is refused as InvalidArgument naming the field", async (t) => {
  const artifacts = createClient(ArtifactService, createGrpcTransport({ baseUrl: t.context.logged.hub.url, interceptors: [bearerAuth(t.context.logged.trustKey)] }));
  const upload = artifacts.upload(
    (async function* () {
      yield create(UploadRequestSchema, { part: { case: "begin", value: { artifactId: randomUUID(), sizeBytes: 1n, purpose: "result", taskId: "t\0" } } });
      yield create(UploadRequestSchema, { part: { case: "chunk", value: { data: new Uint8Array([1]) } } });
      yield create(UploadRequestSchema, { part: { case: "finish", value: { sha256: createHash("sha256").update(new Uint8Array([1])).digest("hex") } } });
    })(),
  );
  const err = await connectErrorOf(upload);
  t.is(err.code, Code.InvalidArgument, err.message);
  t.true(err.rawMessage.startsWith("begin.task_id: "), err.rawMessage);
});

test("a streamed message that cannot be decoded is the caller's fault: InvalidArgument, and no error in the log", async (t) => {
  const session = http2.connect(t.context.logged.hub.url);
  t.teardown(() => session.close());
  // Field 1 (begin) announces 5 bytes and none follow.
  const truncated = Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x05]);
  const stream = session.request({
    ":method": "POST",
    ":path": `/${ArtifactService.typeName}/${ArtifactService.method.upload.name}`,
    "content-type": "application/connect+proto",
    authorization: `Bearer ${t.context.logged.trustKey}`,
  });
  stream.end(truncated);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  // The answer is one end-of-stream envelope (flag 2) holding JSON.
  t.is(body[0], 2);
  const end = JSON.parse(body.subarray(5).toString()) as { error?: { code: string; message: string } };
  t.is(end.error?.code, "invalid_argument", end.error?.message);
  t.deepEqual(t.context.logged.lines.filter((l) => l.level >= ERROR_LEVEL).map((l) => l.msg), []);
});

test("DeleteProject without a project id is InvalidArgument naming the field, not a database error", async (t) => {
  const projects = createClient(ProjectService, createGrpcTransport({ baseUrl: t.context.logged.hub.url, interceptors: [bearerAuth(t.context.logged.adminToken)] }));
  const err = await connectErrorOf(projects.deleteProject({ projectId: "" }));
  t.is(err.code, Code.InvalidArgument, err.message);
  t.regex(err.rawMessage, /^project_id: /);
});
