import anyTest, { type TestFn } from "ava";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AuthService, Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { PASSWORD, startTestHub } from "../../../../test/support/test-hub.js";
import { openDatabase, type Database } from "../db/database.js";
import { base32Decode } from "./base32.js";
import { AesGcmSealer, isSealed, plaintextSealer, prepareSecretSealer, readSecretsKeyFile, SealedSecretError, totpContext } from "./secret-sealer.js";
import { totpCode } from "./totp.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
  dir: string;
}
const test = anyTest as TestFn<Ctx>;
const log = createLogger({ service: "test", level: "silent" });

test.before(async (t) => {
  const tdb = await createTestDatabase("secret_sealer");
  t.context = { tdb, db: await openDatabase(tdb.url, log), dir: mkdtempSync(path.join(os.tmpdir(), "flip-secrets-")) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
  if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
});

test("a sealed secret opens only with the same key and context, and any altered byte is refused", (t) => {
  const sealer = new AesGcmSealer(randomBytes(32));
  const sealed = sealer.seal("JBSWY3DPEHPK3PXP", "totp:alice");
  t.true(isSealed(sealed));
  t.false(sealed.includes("JBSWY3DPEHPK3PXP"));
  t.not(sealer.seal("JBSWY3DPEHPK3PXP", "totp:alice"), sealed, "a fresh nonce each time");
  t.is(sealer.open(sealed, "totp:alice"), "JBSWY3DPEHPK3PXP");
  t.throws(() => sealer.open(sealed, "totp:mallory"), { instanceOf: SealedSecretError }, "moved to another user's row");
  t.throws(() => new AesGcmSealer(randomBytes(32)).open(sealed, "totp:alice"), { instanceOf: SealedSecretError });
  const raw = Buffer.from(sealed.slice(3), "base64url");
  raw[raw.length - 1]! ^= 1;
  t.throws(() => sealer.open(`v1:${raw.toString("base64url")}`, "totp:alice"), { instanceOf: SealedSecretError });
  t.throws(() => plaintextSealer.open(sealed, "totp:alice"), { instanceOf: SealedSecretError, message: /no FLIP_SECRETS_KEY_FILE/ });
});

test("a missing default key file is created with owner-only permissions; a configured one must exist and hold 32 bytes", (t) => {
  const file = path.join(t.context.dir, "nested", "secrets.key");
  const key = readSecretsKeyFile(file, true);
  t.is(key.length, 32);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(readSecretsKeyFile(file, false), key, "read back the same key");
  t.throws(() => readSecretsKeyFile(path.join(t.context.dir, "absent.key"), false), { message: /cannot read .*absent\.key.*openssl rand -hex 32/ });
  const short = path.join(t.context.dir, "short.key");
  writeFileSync(short, "abcd\n");
  t.throws(() => readSecretsKeyFile(short, false), { message: /64 hex characters/ });
});

test.serial("start-up seals secrets stored before a key was set, refuses another key, and refuses to run without one afterwards", async (t) => {
  const em = t.context.db.em();
  const userId = randomUUID();
  await em.execute("insert into app_user (id, email, email_key, name, created_at, totp_secret) values (?, 'seal@x.test', 'seal@x.test', 'Seal', now(), 'JBSWY3DPEHPK3PXP')", [userId]);
  t.is(await prepareSecretSealer(em, undefined, log), plaintextSealer, "no key: stored as is");

  const key = randomBytes(32);
  const sealer = await prepareSecretSealer(em, key, log);
  const [row] = await em.execute<{ totp_secret: string }[]>("select totp_secret from app_user where id = ?", [userId]);
  t.true(isSealed(row!.totp_secret));
  t.is(sealer.open(row!.totp_secret, totpContext(userId)), "JBSWY3DPEHPK3PXP");
  await prepareSecretSealer(em, key, log);
  const [again] = await em.execute<{ totp_secret: string }[]>("select totp_secret from app_user where id = ?", [userId]);
  t.is(again!.totp_secret, row!.totp_secret, "a sealed value is not sealed twice");

  await t.throwsAsync(prepareSecretSealer(em, randomBytes(32), log), { message: /different key .* same key file/ });
  await t.throwsAsync(prepareSecretSealer(em, undefined, log), { message: /holds sealed TOTP secrets: set FLIP_SECRETS_KEY_FILE/ });
});

test("with a key file, a TOTP enrolment and sign-in work end to end and the database holds only sealed secrets", async (t) => {
  const keyFile = path.join(t.context.dir, "hub.key");
  writeFileSync(keyFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
  const h = await startTestHub({ FLIP_SECRETS_KEY_FILE: keyFile });
  t.teardown(() => h.close());
  const admin = await h.firstAdmin();
  const rita = await h.user(admin.token, "rita@x.test", [{ role: Role.RESEARCHER }]);
  const me = h.client(AuthService, rita.token);
  const { secretBase32 } = await me.beginTotpEnrollment({});
  const secret = base32Decode(secretBase32);
  await me.confirmTotpEnrollment({ code: totpCode(secret, new Date()) });
  const session = await h.client(AuthService).login({ email: "rita@x.test", password: PASSWORD, totpCode: totpCode(secret, new Date(Date.now() + 30_000)) });
  t.truthy(session.accessToken);

  const [row] = await h.hub.db.em().execute<{ totp_secret: string }[]>("select totp_secret from app_user where id = ?", [rita.id]);
  t.true(isSealed(row!.totp_secret));
  t.false(row!.totp_secret.includes(secretBase32));
  t.is(new AesGcmSealer(Buffer.from(readFileSync(keyFile, "utf8").trim(), "hex")).open(row!.totp_secret, totpContext(rita.id)), secretBase32);
});
