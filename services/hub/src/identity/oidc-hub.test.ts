import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { startTestIssuer, type TestIssuer } from "./test-issuer.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../../../../test/support/test-hub.js";

interface Ctx {
  h: TestHub;
  idp: TestIssuer;
}
const test = anyTest as TestFn<Ctx>;

/** The identity clients, sending `token` (or nothing) as the bearer token. */
function as(h: TestHub, token?: string) {
  return { auth: h.client(AuthService, token), users: h.client(UserService, token), trusts: h.client(TrustService, token) };
}
const now = () => Math.floor(Date.now() / 1000);

test.before(async (t) => {
  const idp = await startTestIssuer("flip-api");
  const h = await startTestHub({ FLIP_OIDC_ISSUER: idp.issuer, FLIP_OIDC_AUDIENCE: idp.audience });
  // One Admin linked to the provider (created with the bootstrap token), one researcher linked too.
  const bootstrap = as(h, BOOTSTRAP_TOKEN).users;
  await bootstrap.createUser({ email: "sso-admin@example.org", oidcSubject: "admin-sub", roles: [{ role: Role.ADMIN }] });
  const admin = as(h, idp.sign({ sub: "admin-sub" })).users;
  await admin.createUser({ email: "researcher@example.org", oidcSubject: "researcher-sub", roles: [{ role: Role.RESEARCHER }] });
  t.context = { h, idp };
});
test.after.always(async (t) => {
  await t.context.h?.close();
  await t.context.idp?.close();
});

async function whoAmI(t: ExecutionContext<Ctx>, token: string) {
  return await as(t.context.h, token).auth.whoAmI({});
}

async function refused(t: ExecutionContext<Ctx>, token: string, message?: RegExp): Promise<void> {
  const err = ConnectError.from(await t.throwsAsync(whoAmI(t, token)));
  t.is(Code[err.code], "Unauthenticated", err.rawMessage);
  if (message) t.regex(err.rawMessage, message);
}

test("a provider token for a linked subject signs the user in", async (t) => {
  const me = await whoAmI(t, t.context.idp.sign({ sub: "researcher-sub" }));
  t.is(me.authMethod, "oidc");
  t.is(me.user?.email, "researcher@example.org");
  t.deepEqual(me.user?.roles.map((r) => r.role), [Role.RESEARCHER]);
});

test("an ES256 provider token is accepted too", async (t) => {
  t.is((await whoAmI(t, t.context.idp.sign({ sub: "researcher-sub" }, { alg: "ES256" }))).user?.email, "researcher@example.org");
});

test("a valid token for a subject no user is linked to is refused, saying an admin must link it", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "stranger" }), /an admin must link it/);
});

test("an expired token is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "researcher-sub", iat: now() - 3600, exp: now() - 600 }), /expired/);
});

test("a token that is not valid yet is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "researcher-sub", nbf: now() + 3600 }), /not valid yet/);
});

test("a forged token (a key the provider never published) is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub" }, { foreignKey: true }), /signature/);
});

test("a token naming an unknown key is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub" }, { kid: "unknown-kid" }), /unknown-kid/);
});

test("a token from another issuer is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub", iss: "https://login.example.com" }), /issued by someone else/);
});

test("a token for another audience is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub", aud: "another-api" }), /another audience/);
});

test("an unsigned token (alg none) is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub" }, { alg: "none" }), /none/);
});

test("an HS256 token keyed with the provider's public key is refused", async (t) => {
  await refused(t, t.context.idp.sign({ sub: "admin-sub" }, { alg: "HS256", hmacSecret: t.context.idp.rsaPublicKeyPem() }), /HS256/);
});

test("the bootstrap token stopped working once the SSO admin existed", async (t) => {
  const err = ConnectError.from(await t.throwsAsync(as(t.context.h, BOOTSTRAP_TOKEN).auth.whoAmI({})));
  t.is(err.code, Code.Unauthenticated);
  const { users } = await as(t.context.h, t.context.idp.sign({ sub: "admin-sub" })).users.listUsers({});
  t.true(users.some((u) => u.email === "sso-admin@example.org"));
});

test("a disabled single sign-on user is refused even with a valid token", async (t) => {
  const admin = as(t.context.h, t.context.idp.sign({ sub: "admin-sub" })).users;
  const { user } = await admin.createUser({ email: "leaver@example.org", oidcSubject: "leaver-sub" });
  t.is((await whoAmI(t, t.context.idp.sign({ sub: "leaver-sub" }))).user?.id, user?.id);
  await admin.setUserDisabled({ user: user!.id, disabled: true });
  await refused(t, t.context.idp.sign({ sub: "leaver-sub" }), /disabled/);
});

test("a subject can be linked to one user only", async (t) => {
  const admin = as(t.context.h, t.context.idp.sign({ sub: "admin-sub" })).users;
  const err = ConnectError.from(await t.throwsAsync(admin.createUser({ email: "twin@example.org", oidcSubject: "researcher-sub" })));
  t.is(err.code, Code.AlreadyExists);
});
