/**
 * Who may hold a trust link: a hub process, gateways as processes and as hand-driven streams.
 */
import anyTest, { type TestFn } from "ava";
import { Code } from "@connectrpc/connect";
import { issueKey } from "@flip/shared/auth/keys.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { adminClients, linked, startGatewayProc, startHubProc, type AdminClients, type HubProc } from "../support/link.js";
import { RawLink } from "../support/raw-link.js";

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  admin: AdminClients;
  keys: Record<string, string>;
}
const test = anyTest as TestFn<Ctx>;

// Serial tests run first and change keys and trusts (kch is rotated, uclh disabled and enabled, rfh
// re-linked); the concurrent ones use nuth, whose key never changes.
test.before(async (t) => {
  const db = await createTestDatabase("link_keys");
  const hub = await startHubProc({ databaseUrl: db.url });
  const admin = adminClients(hub.url);
  const keys: Record<string, string> = {};
  for (const code of ["kch", "uclh", "nuth", "rfh"]) keys[code] = (await admin.trusts.registerTrust({ name: `${code} hospital`, code })).apiKey;
  t.context = { db, hub, admin, keys };
});

test.after.always(async (t) => {
  await t.context.hub?.proc.stop();
  await t.context.db?.drop();
});

test("a stream without a key, with a malformed key or with an unknown key is refused as Unauthenticated", async (t) => {
  for (const key of [undefined, "not-a-key", issueKey("trust").key]) {
    const link = RawLink.open(t.context.hub.url, key, { trustCode: "kch" });
    const err = await link.ended();
    t.is(err?.code, Code.Unauthenticated, `key ${key ?? "(none)"}`);
  }
});

test("the first message of a stream must be hello", async (t) => {
  const link = RawLink.open(t.context.hub.url, t.context.keys.nuth, { case: "heartbeat", value: {} });
  const err = await link.ended();
  t.is(err?.code, Code.InvalidArgument);
  t.regex(err?.rawMessage ?? "", /first message .* must be hello/);
});

test("a key presented for another trust's code is refused, naming both trusts", async (t) => {
  const link = RawLink.open(t.context.hub.url, t.context.keys.nuth, { trustCode: "uclh" });
  const err = await link.ended();
  t.is(err?.code, Code.PermissionDenied);
  t.regex(err?.rawMessage ?? "", /belongs to trust "nuth".*configured for "uclh"/);
});

test("a gateway whose key is refused stops with exit code 3 and says why, instead of retrying", async (t) => {
  const gw = startGatewayProc({ hubUrl: t.context.hub.url, trustCode: "nuth", key: issueKey("trust").key });
  const exit = await gw.proc.exited;
  t.is(exit.code, 3);
  const fatal = gw.proc.logs.find((r) => r.level === 60);
  t.regex(String(fatal?.reason), /not valid/);
});

test("a gateway configured for another trust than its key's refuses to run", async (t) => {
  const gw = startGatewayProc({ hubUrl: t.context.hub.url, trustCode: "rfh", key: t.context.keys.nuth! });
  const exit = await gw.proc.exited;
  t.is(exit.code, 3);
  t.regex(String(gw.proc.logs.find((r) => r.level === 60)?.reason), /belongs to trust "nuth"/);
});

test.serial("rotating a trust's key cuts its open link at once, and the gateway with the old key stops", async (t) => {
  const { hub, admin, keys } = t.context;
  // The replaced gateway waits at least 3 s before it dials again, so it cannot take the link back from the raw
  // stream before the rotation below; when it does dial, its old key is refused.
  const gw = startGatewayProc({ hubUrl: hub.url, trustCode: "kch", key: keys.kch!, env: { FLIP_GATEWAY_RECONNECT_MIN_MS: "6000", FLIP_GATEWAY_RECONNECT_MAX_MS: "6000" } });
  await linked(gw);
  const raw = RawLink.open(hub.url, keys.kch, { trustCode: "kch" });
  await raw.next("welcome");
  // The raw stream replaced the gateway's; both were authenticated with the key being rotated.
  const rotated = Date.now();
  const { apiKey } = await admin.trusts.rotateTrustKey({ trust: "kch" });
  const err = await raw.ended();
  t.is(err?.code, Code.Unauthenticated);
  t.regex(err?.rawMessage ?? "", /rotated or revoked/);
  t.true(Date.now() - rotated < 2_000, "cut at once, not at the next heartbeat");
  t.is((await gw.proc.exited).code, 3, "the old key is refused when the gateway reconnects");
  const fresh = RawLink.open(hub.url, apiKey, { trustCode: "kch" });
  t.is((await fresh.next("welcome")).trustCode, "kch");
  fresh.close();
});

test.serial("disabling a trust cuts its open link and refuses new ones; enabling lets its key back in", async (t) => {
  const { hub, admin, keys } = t.context;
  const open = RawLink.open(hub.url, keys.uclh, { trustCode: "uclh" });
  await open.next("welcome");
  await admin.trusts.disableTrust({ trust: "uclh", reason: "audit" });
  const err = await open.ended();
  t.is(err?.code, Code.PermissionDenied);
  const refused = await RawLink.open(hub.url, keys.uclh, { trustCode: "uclh" }).ended();
  t.is(refused?.code, Code.PermissionDenied);
  t.regex(refused?.rawMessage ?? "", /disabled/);
  await admin.trusts.enableTrust({ trust: "uclh" });
  const back = RawLink.open(hub.url, keys.uclh, { trustCode: "uclh" });
  t.is((await back.next("welcome")).trustCode, "uclh");
  back.close();
});

test.serial("a newer stream of the same trust replaces the older one, which ends as Aborted", async (t) => {
  const { hub, keys } = t.context;
  const first = RawLink.open(hub.url, keys.rfh, { trustCode: "rfh" });
  await first.next("welcome");
  const second = RawLink.open(hub.url, keys.rfh, { trustCode: "rfh" });
  await second.next("welcome");
  const err = await first.ended();
  t.is(err?.code, Code.Aborted);
  second.close();
});
