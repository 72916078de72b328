import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { AuthService, Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub, type RunningHub } from "@flip/hub/hub.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { runCliCaptured } from "@flip/tools/cli/run-captured.js";
import { BOOTSTRAP_TOKEN, PASSWORD, startTestHub, type TestHub } from "../support/test-hub.js";

/** Hub A (from startTestHub) and hub B, a second replica on the same database. */
interface Ctx {
  a: TestHub;
  b: RunningHub;
  bDataDir: string;
  adminToken: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const a = await startTestHub();
  const bDataDir = mkdtempSync(path.join(os.tmpdir(), "flip-hub-b-"));
  const b = await startHub(
    readHubConfig({ DATABASE_URL: a.db.url, FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_ADMIN_TOKEN: BOOTSTRAP_TOKEN, FLIP_HUB_DATA_DIR: bDataDir }),
    createLogger({ service: "hub-b", level: "silent" }),
  );
  t.context = { a, b, bDataDir, adminToken: (await a.firstAdmin()).token };
});

test.after.always(async (t) => {
  await t.context.b?.close();
  await t.context.a?.close();
  if (t.context.bDataDir) rmSync(t.context.bDataDir, { recursive: true, force: true });
});

const client = <S extends Parameters<typeof createClient>[0]>(url: string, service: S, token?: string) =>
  createClient(service, createGrpcTransport({ baseUrl: url, interceptors: token ? [bearerAuth(token)] : [] }));

/** Who the token belongs to, as hub `url` sees it; undefined when the hub refuses it. */
async function whoAt(url: string, token: string): Promise<string | undefined> {
  try {
    return (await client(url, AuthService, token).whoAmI({})).user?.email;
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.Unauthenticated) throw err;
    return undefined;
  }
}

/** Waits (bounded) until hub `url` accepts the token: a replica learns of a rotation by NOTIFY. */
async function acceptedAt(url: string, token: string): Promise<string | undefined> {
  for (let waited = 0; waited < 5_000; waited += 50) {
    const who = await whoAt(url, token);
    if (who) return who;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

function flip(t: ExecutionContext<Ctx>, ...argv: string[]) {
  return runCliCaptured([...argv, "--hub", t.context.a.hub.url, "--token", t.context.adminToken]);
}

test.serial("a rotated key signs new tokens on every replica, the old one verifies its own tokens until revoked, and sessions survive", async (t) => {
  const { a, b } = t.context;
  const urlA = a.hub.url;
  const urlB = b.url;
  await a.user(t.context.adminToken, "rita@hub.test", [{ role: Role.RESEARCHER }]);
  const rita = await client(urlA, AuthService).login({ email: "rita@hub.test", password: PASSWORD });
  t.is(await whoAt(urlB, rita.accessToken), "rita@hub.test", "replicas share the signing key");

  const refused = await t.throwsAsync(client(urlA, AdminService, rita.accessToken).rotateSigningKey({}));
  t.is(ConnectError.from(refused).code, Code.PermissionDenied);

  // Rotation through the CLI, on hub A.
  const first = await flip(t, "admin", "rotate-signing-key", "--json");
  t.is(first.code, 0, first.out);
  const rotated = JSON.parse(first.out) as { keyId: string; previousKeyId: string | null };
  t.regex(rotated.keyId, /^[0-9a-f]{16}$/);
  t.truthy(rotated.previousKeyId);
  t.not(rotated.keyId, rotated.previousKeyId);
  t.is(await whoAt(urlA, rita.accessToken), "rita@hub.test", "a token signed before the rotation still works");
  t.is(await whoAt(urlB, rita.accessToken), "rita@hub.test");
  const signedAfter = await client(urlB, AuthService).login({ email: "rita@hub.test", password: PASSWORD });
  t.is(await acceptedAt(urlA, signedAfter.accessToken), "rita@hub.test", "a token signed by the other replica after the rotation is accepted");
  t.is(await acceptedAt(urlB, signedAfter.accessToken), "rita@hub.test");

  // A leaked key: revoke it at once.
  const second = await client(urlB, AdminService, t.context.adminToken).rotateSigningKey({ revokePrevious: true });
  t.is(second.previousKeyId, "");
  t.not(second.keyId, rotated.keyId);
  for (const url of [urlA, urlB]) {
    for (let waited = 0; waited < 5_000 && (await whoAt(url, signedAfter.accessToken)); waited += 50) await new Promise((r) => setTimeout(r, 50));
    t.is(await whoAt(url, signedAfter.accessToken), undefined, "a token signed with the revoked key is refused");
    t.is(await whoAt(url, rita.accessToken), undefined, "a key replaced twice is gone");
  }
  const renewed = await client(urlA, AuthService).refresh({ refreshToken: signedAfter.refreshToken });
  t.is(await acceptedAt(urlB, renewed.accessToken), "rita@hub.test", "the session survives: its refresh token gets a token signed with the new key");

  const audit = await a.hub.db.em().execute<{ after_json: string }[]>("select after_json from audit_entry where action = 'identity.signing_key_rotated' order by id");
  t.deepEqual(
    audit.map((r) => JSON.parse(r.after_json) as unknown),
    [
      { keyId: rotated.keyId, previousKeyAccepted: true },
      { keyId: second.keyId, previousKeyAccepted: false },
    ],
  );
});
