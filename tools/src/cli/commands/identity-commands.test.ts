import { mkdtempSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { base32Decode } from "@flip/hub/identity/base32.js";
import { totpCode } from "@flip/hub/identity/totp.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../../../../test/support/test-hub.js";
import { credentialsPath, readCredentials } from "../credentials.js";
import { runCliCaptured } from "../run-captured.js";

interface Ctx {
  h: TestHub;
  configDir: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  t.context = { h: await startTestHub(), configDir: mkdtempSync(path.join(os.tmpdir(), "flip-cli-")) };
});
test.after.always(async (t) => {
  await t.context.h?.close();
  rmSync(t.context.configDir, { recursive: true, force: true });
});

/** Runs `flip …` in-process against the test hub; FLIP_ADMIN_TOKEN is set throughout, as in a demo shell. */
async function flip(ctx: Ctx, argv: string[], extraEnv: Record<string, string> = {}) {
  const run = await runCliCaptured(argv, { FLIP_HUB_URL: ctx.h.hub.url, FLIP_CONFIG_DIR: ctx.configDir, FLIP_ADMIN_TOKEN: BOOTSTRAP_TOKEN, ...extraEnv });
  return { ...run, json: () => JSON.parse(run.out) as Record<string, unknown> };
}

const env = (ctx: Ctx) => ({ FLIP_CONFIG_DIR: ctx.configDir });

/** Printed by `flip user create --generate-password` in the first test, used by the second. */
let adminPassword = "";

// One story, in order: the CLI's state (the stored login) carries from step to step.
test.serial("an operator creates the first admin, signs in, manages users and tokens, and signs out", async (t) => {
  const created = await flip(t.context, ["user", "create", "--email", "admin@cli.test", "--name", "Ada", "--role", "admin", "--generate-password", "--json"]);
  t.is(created.code, 0, created.err);
  adminPassword = created.json().password as string;
  t.true(adminPassword.length >= 12);

  const login = await flip(t.context, ["login", "--email", "admin@cli.test"], { FLIP_PASSWORD: adminPassword });
  t.is(login.code, 0, login.err);
  t.regex(login.out, /signed in to .* as admin@cli\.test \(admin\)/);
  const stored = readCredentials(env(t.context));
  t.is(stored?.kind, "api-token");
  t.regex(stored?.token ?? "", /^flip_user_/);
  t.is(statSync(credentialsPath(env(t.context))).mode & 0o777, 0o600);

  // The stored login outranks FLIP_ADMIN_TOKEN, which the hub now refuses.
  const who = await flip(t.context, ["whoami", "--json"]);
  t.is(who.code, 0, who.err);
  t.is(who.json().authMethod, "api-token");

  const researcher = await flip(t.context, ["user", "create", "--email", "rosalind@cli.test", "--role", "researcher", "--generate-password", "--json"]);
  t.is(researcher.code, 0, researcher.err);
  t.is((await flip(t.context, ["user", "grant", "rosalind@cli.test", "viewer"])).out.trim(), "rosalind@cli.test: researcher, viewer");
  t.is((await flip(t.context, ["user", "revoke", "rosalind@cli.test", "viewer"])).out.trim(), "rosalind@cli.test: researcher");
  const bad = await flip(t.context, ["user", "grant", "rosalind@cli.test", "trust-admin"]);
  t.is(bad.code, 2);
  t.regex(bad.err, /trust-admin needs its trust/);
  const missingTrust = await flip(t.context, ["user", "grant", "rosalind@cli.test", "trust-admin:nowhere"]);
  t.is(missingTrust.code, 1);
  t.regex(missingTrust.err, /NotFound/);

  const list = await flip(t.context, ["user", "list"]);
  t.regex(list.out, /admin@cli\.test\s+Ada\s+admin\s+active/);
  t.regex(list.out, /rosalind@cli\.test\s+-\s+researcher\s+active/);
  t.regex((await flip(t.context, ["user", "disable", "rosalind@cli.test"])).out, /disabled/);
  t.regex((await flip(t.context, ["user", "enable", "rosalind@cli.test"])).out, /enabled/);
  t.regex((await flip(t.context, ["user", "require-totp", "rosalind@cli.test"])).out, /TOTP required/);
  t.regex((await flip(t.context, ["user", "reset-totp", "rosalind@cli.test"])).out, /TOTP reset/);
  t.regex((await flip(t.context, ["user", "get", "rosalind@cli.test"])).out, /TOTP: required, not enrolled/);

  const token = await flip(t.context, ["token", "create", "--name", "nightly job", "--ttl-days", "7", "--json"]);
  t.is(token.code, 0, token.err);
  const { secret, token: record } = token.json() as { secret: string; token: { id: string } };
  t.is((await flip(t.context, ["whoami", "--json"], { FLIP_TOKEN: secret })).json().authMethod, "api-token");
  t.regex((await flip(t.context, ["token", "list"])).out, /nightly job/);
  t.is((await flip(t.context, ["token", "revoke", record.id])).code, 0);
  t.is((await flip(t.context, ["whoami"], { FLIP_TOKEN: secret })).code, 1);

  const storedToken = readCredentials(env(t.context))!.token;
  const logout = await flip(t.context, ["logout"]);
  t.is(logout.code, 0, logout.err);
  t.is(readCredentials(env(t.context)), undefined);
  const after = await flip(t.context, ["whoami"], { FLIP_TOKEN: storedToken });
  t.is(after.code, 1);
  t.regex(after.err, /revoked/);
});

test.serial("signing in to an account with TOTP takes the code from --totp, and says so when it is missing", async (t) => {
  const h = t.context.h;
  const admin = (await h.client(AuthService).login({ email: "admin@cli.test", password: adminPassword })).accessToken;
  const password = "meadow lark at dawn";
  await h.client(UserService, admin).createUser({ email: "tess@cli.test", password });
  const auth = h.client(AuthService, (await h.client(AuthService).login({ email: "tess@cli.test", password })).accessToken);
  const secret = base32Decode((await auth.beginTotpEnrollment({})).secretBase32);
  await auth.confirmTotpEnrollment({ code: totpCode(secret, new Date()) });

  const noCode = await flip(t.context, ["login", "--email", "tess@cli.test"], { FLIP_PASSWORD: password });
  t.is(noCode.code, 2);
  t.regex(noCode.err, /pass --totp/);
  const next = totpCode(secret, new Date(Date.now() + 30_000));
  const withCode = await flip(t.context, ["login", "--email", "tess@cli.test", "--totp", next], { FLIP_PASSWORD: password });
  t.is(withCode.code, 0, withCode.err);
  t.is(readCredentials(env(t.context))?.email, "tess@cli.test");
  t.regex((await flip(t.context, ["whoami"])).out, /TOTP: enrolled/);
});
