import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { verifyAuditChain } from "../audit/verify.js";
import { base32Decode } from "./base32.js";
import { TOTP_REQUIRED_HEADER } from "./errors.js";
import { BOOTSTRAP_TOKEN, startTestHub, type TestHub } from "../../../../test/support/test-hub.js";
import { totpCode } from "./totp.js";

interface Ctx {
  h: TestHub;
}
const test = anyTest as TestFn<Ctx>;

/** The identity clients, sending `token` (or nothing) as the bearer token. */
function as(h: TestHub, token?: string) {
  return { auth: h.client(AuthService, token), users: h.client(UserService, token), trusts: h.client(TrustService, token) };
}
/** An API token of the first Admin, created by the first (serial) test; tests get copies of t.context, so it lives here. */
let adminToken = "";

const PASSWORD = "correct horse battery staple";
const MAX_FAILURES = 3;

test.before(async (t) => {
  t.context.h = await startTestHub({ FLIP_LOGIN_MAX_FAILURES: String(MAX_FAILURES), FLIP_LOGIN_FAILURE_WINDOW_S: "60" });
});
test.after.always(async (t) => {
  await t.context.h?.close();
});

async function refusal(t: ExecutionContext, p: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  const e = await t.throwsAsync(p);
  const err = ConnectError.from(e);
  t.is(Code[err.code], Code[code], err.rawMessage);
  if (message) t.regex(err.rawMessage, message);
  return err;
}

let counter = 0;
/** Creates a user through the admin API and returns their email. */
async function newUser(t: ExecutionContext<Ctx>, roles: { role: Role; trustId?: string }[] = [{ role: Role.RESEARCHER }], extra: { totpRequired?: boolean } = {}) {
  const email = `user${++counter}-${Date.now()}@example.org`;
  const { user } = await as(t.context.h, adminToken).users.createUser({ email, name: `User ${counter}`, password: PASSWORD, roles, ...extra });
  return { email, id: user!.id };
}

async function signIn(t: ExecutionContext<Ctx>, email: string, totp = "") {
  return await as(t.context.h, ).auth.login({ email, password: PASSWORD, totpCode: totp });
}

async function auditActions(t: ExecutionContext<Ctx>, target: string): Promise<string[]> {
  const rows = await t.context.h.hub.db.em().execute<{ action: string }[]>("select action from audit_entry where target = ? order by id", [target]);
  return rows.map((r) => r.action);
}

test.serial("the bootstrap token works until the first Admin exists and is refused for everything afterwards", async (t) => {
  const bootstrap = as(t.context.h, BOOTSTRAP_TOKEN);
  t.is((await bootstrap.auth.whoAmI({})).authMethod, "bootstrap");
  await refusal(t, bootstrap.auth.createApiToken({ name: "x" }), Code.PermissionDenied, /not a user account/);
  await bootstrap.trusts.registerTrust({ name: "Trust A", code: "trust-a", region: "london" });

  const { user } = await bootstrap.users.createUser({ email: "First.Admin@example.org", name: "First Admin", password: PASSWORD, roles: [{ role: Role.ADMIN }] });
  t.is(user?.email, "First.Admin@example.org");
  t.deepEqual(user?.roles.map((r) => r.role), [Role.ADMIN]);

  await refusal(t, bootstrap.auth.whoAmI({}), Code.Unauthenticated, /sign in as an admin/);
  await refusal(t, bootstrap.users.createUser({ email: "second@example.org", password: PASSWORD }), Code.Unauthenticated, /only serves to create the first Admin/);
  await refusal(t, bootstrap.trusts.listTrusts({}), Code.Unauthenticated);

  const session = await signIn(t, "first.admin@EXAMPLE.org");
  const admin = as(t.context.h, session.accessToken);
  const me = await admin.auth.whoAmI({});
  t.is(me.authMethod, "session");
  t.is(me.user?.id, user?.id);
  const { secret } = await admin.auth.createApiToken({ name: "tests" });
  t.regex(secret, /^flip_user_[0-9a-f]{16}_[\w-]{43}$/);
  adminToken = secret;
  t.deepEqual(await auditActions(t, `user:${user!.id}`), ["user.created", "session.started", "api_token.created"]);
});

test("a wrong password and an unknown email get the same answer", async (t) => {
  const { email } = await newUser(t);
  const wrong = await refusal(t, as(t.context.h, ).auth.login({ email, password: "not the password at all" }), Code.Unauthenticated);
  const unknown = await refusal(t, as(t.context.h, ).auth.login({ email: `nobody-${Date.now()}@example.org`, password: PASSWORD }), Code.Unauthenticated);
  t.is(wrong.rawMessage, unknown.rawMessage);
  await refusal(t, as(t.context.h, ).auth.login({ email: "", password: PASSWORD }), Code.InvalidArgument, /^email/);
});

test("after repeated failures sign-in is refused for a while, even with the right password", async (t) => {
  const { email, id } = await newUser(t);
  for (let i = 0; i < MAX_FAILURES; i++) await refusal(t, as(t.context.h, ).auth.login({ email, password: "wrong password here" }), Code.Unauthenticated);
  const err = await refusal(t, signIn(t, email), Code.ResourceExhausted, /too many failed sign-in attempts/);
  t.truthy(err.metadata.get("retry-after"));
  t.is((await auditActions(t, `user:${id}`)).filter((a) => a === "auth.login_failed").length, MAX_FAILURES);
  // The counter lives in Postgres: clearing it there (as the window passing would) lets the user in again.
  await t.context.h.hub.db.em().execute("delete from login_attempt where email_key = ?", [email.toLowerCase()]);
  t.truthy((await signIn(t, email)).accessToken);
});

test("parallel guesses cannot slip past the limit before the first failure is recorded", async (t) => {
  const { email } = await newUser(t);
  const results = await Promise.allSettled(Array.from({ length: 12 }, () => as(t.context.h).auth.login({ email, password: "a parallel guess!" })));
  const codes = results.map((r) => (r.status === "rejected" ? ConnectError.from(r.reason).code : "ok"));
  t.true(codes.filter((c) => c === Code.Unauthenticated).length <= MAX_FAILURES);
  t.true(codes.filter((c) => c === Code.ResourceExhausted).length >= 12 - MAX_FAILURES);
});

test("a successful sign-in clears earlier failures", async (t) => {
  const { email } = await newUser(t);
  for (let i = 0; i < MAX_FAILURES - 1; i++) await refusal(t, as(t.context.h, ).auth.login({ email, password: "wrong password here" }), Code.Unauthenticated);
  await signIn(t, email);
  for (let i = 0; i < MAX_FAILURES - 1; i++) await refusal(t, as(t.context.h, ).auth.login({ email, password: "wrong password here" }), Code.Unauthenticated);
  t.truthy((await signIn(t, email)).accessToken);
});

test("a user required to use TOTP can only enrol until they do, then signs in with a code that works once", async (t) => {
  const { email, id } = await newUser(t, undefined, { totpRequired: true });
  const first = await signIn(t, email);
  t.true(first.user?.totpRequired);
  t.false(first.user?.totpEnrolled);
  const me = as(t.context.h, first.accessToken);
  await refusal(t, me.trusts.listTrusts({}), Code.FailedPrecondition, /enrol TOTP first/);
  await refusal(t, me.auth.createApiToken({ name: "sneaky" }), Code.FailedPrecondition);
  t.is((await me.auth.whoAmI({})).user?.email, email);

  const enrol = await me.auth.beginTotpEnrollment({});
  t.true(enrol.otpauthUri.startsWith("otpauth://totp/"));
  const secret = base32Decode(enrol.secretBase32);
  await refusal(t, me.auth.confirmTotpEnrollment({ code: "000000" === totpCode(secret, new Date()) ? "111111" : "000000" }), Code.InvalidArgument, /^code/);
  await me.auth.confirmTotpEnrollment({ code: totpCode(secret, new Date()) });
  t.truthy(await me.trusts.listTrusts({}));
  await refusal(t, me.auth.beginTotpEnrollment({}), Code.FailedPrecondition, /already set up/);

  const noCode = await refusal(t, signIn(t, email), Code.Unauthenticated, /totp_code/);
  t.is(noCode.metadata.get(TOTP_REQUIRED_HEADER), "true");
  // The enrolment used this step's code; the next step's code is within the accepted drift.
  const next = totpCode(secret, new Date(Date.now() + 30_000));
  const second = await signIn(t, email, next);
  t.true(second.user?.totpEnrolled);
  await refusal(t, signIn(t, email, next), Code.Unauthenticated, /already used/);
  t.deepEqual((await auditActions(t, `user:${id}`)).filter((a) => a.startsWith("totp.")), ["totp.enrollment_started", "totp.enrolled"]);
});

test("an admin's TOTP reset ends the user's sessions and lets them enrol again", async (t) => {
  const { email, id } = await newUser(t, undefined, { totpRequired: true });
  const me = as(t.context.h, (await signIn(t, email)).accessToken);
  const { secretBase32 } = await me.auth.beginTotpEnrollment({});
  await me.auth.confirmTotpEnrollment({ code: totpCode(base32Decode(secretBase32), new Date()) });
  const session = await signIn(t, email, totpCode(base32Decode(secretBase32), new Date(Date.now() + 30_000)));

  const { user } = await as(t.context.h, adminToken).users.resetTotp({ user: email });
  t.false(user?.totpEnrolled);
  t.true(user?.totpRequired);
  await refusal(t, as(t.context.h, session.accessToken).auth.whoAmI({}), Code.Unauthenticated, /session has ended/);
  await refusal(t, as(t.context.h, ).auth.refresh({ refreshToken: session.refreshToken }), Code.Unauthenticated);
  const again = as(t.context.h, (await signIn(t, email)).accessToken);
  await refusal(t, again.trusts.listTrusts({}), Code.FailedPrecondition);
  t.truthy((await again.auth.beginTotpEnrollment({})).secretBase32);
  t.true((await auditActions(t, `user:${id}`)).includes("totp.reset"));
});

test("a refresh token rotates, and presenting a used one ends the whole session", async (t) => {
  const { email } = await newUser(t);
  const first = await signIn(t, email);
  const anon = as(t.context.h, ).auth;
  const second = await anon.refresh({ refreshToken: first.refreshToken });
  t.not(second.refreshToken, first.refreshToken);
  t.is((await as(t.context.h, second.accessToken).auth.whoAmI({})).user?.email, email);
  const third = await anon.refresh({ refreshToken: second.refreshToken });

  await refusal(t, anon.refresh({ refreshToken: first.refreshToken }), Code.Unauthenticated, /already used/);
  // The thief's reuse also cut off the legitimate holder of the newest tokens.
  await refusal(t, anon.refresh({ refreshToken: third.refreshToken }), Code.Unauthenticated, /session has ended/);
  await refusal(t, as(t.context.h, third.accessToken).auth.whoAmI({}), Code.Unauthenticated);
  await refusal(t, anon.refresh({ refreshToken: "not-a-token" }), Code.InvalidArgument, /^refresh_token/);
});

test("logging out ends the session at once and is idempotent", async (t) => {
  const { email, id } = await newUser(t);
  const s = await signIn(t, email);
  await as(t.context.h, ).auth.logout({ refreshToken: s.refreshToken });
  await as(t.context.h, ).auth.logout({ refreshToken: s.refreshToken });
  await refusal(t, as(t.context.h, s.accessToken).auth.whoAmI({}), Code.Unauthenticated, /session has ended/);
  await refusal(t, as(t.context.h, ).auth.refresh({ refreshToken: s.refreshToken }), Code.Unauthenticated);
  t.is((await auditActions(t, `user:${id}`)).filter((a) => a === "session.ended").length, 1);
});

test("API tokens are created, used, listed with their last use, revoked, and refused when expired", async (t) => {
  const { email } = await newUser(t);
  const me = as(t.context.h, (await signIn(t, email)).accessToken);
  const a = await me.auth.createApiToken({ name: "laptop", ttlDays: 30 });
  const b = await me.auth.createApiToken({ name: "ci" });
  t.is(Number(a.token!.expiresAt!.seconds - a.token!.createdAt!.seconds), 30 * 86400);
  t.is(Number(b.token!.expiresAt!.seconds - b.token!.createdAt!.seconds), 90 * 86400);
  await refusal(t, me.auth.createApiToken({ name: "" }), Code.InvalidArgument, /^name/);
  await refusal(t, me.auth.createApiToken({ name: "x", ttlDays: 400 }), Code.InvalidArgument, /^ttl_days/);

  const viaToken = as(t.context.h, a.secret);
  t.is((await viaToken.auth.whoAmI({})).authMethod, "api-token");
  const listed = (await me.auth.listApiTokens({})).tokens;
  t.deepEqual(listed.map((x) => x.name).sort(), ["ci", "laptop"]);
  t.truthy(listed.find((x) => x.name === "laptop")?.lastUsedAt);
  t.falsy(listed.find((x) => x.name === "ci")?.lastUsedAt);

  await me.auth.revokeApiToken({ tokenId: a.token!.id });
  await me.auth.revokeApiToken({ tokenId: a.token!.id });
  await refusal(t, viaToken.auth.whoAmI({}), Code.Unauthenticated, /revoked/);
  t.true((await me.auth.listApiTokens({})).tokens.find((x) => x.id === a.token!.id)?.revoked);

  await t.context.h.hub.db.em().execute("update api_token set expires_at = now() - interval '1 second' where id = ?", [b.token!.id]);
  await refusal(t, as(t.context.h, b.secret).auth.whoAmI({}), Code.Unauthenticated, /expired/);
  await refusal(t, as(t.context.h, b.secret.slice(0, -1) + (b.secret.endsWith("A") ? "B" : "A")).auth.whoAmI({}), Code.Unauthenticated, /not valid/);
});

test("a user cannot revoke another user's token (it is not found), an admin can", async (t) => {
  const owner = await newUser(t);
  const other = await newUser(t);
  const { token, secret } = await as(t.context.h, (await signIn(t, owner.email)).accessToken).auth.createApiToken({ name: "mine" });
  await refusal(t, as(t.context.h, (await signIn(t, other.email)).accessToken).auth.revokeApiToken({ tokenId: token!.id }), Code.NotFound);
  await as(t.context.h, adminToken).auth.revokeApiToken({ tokenId: token!.id });
  await refusal(t, as(t.context.h, secret).auth.whoAmI({}), Code.Unauthenticated);
});

test("a disabled user cannot sign in and their sessions and tokens stop working", async (t) => {
  const { email, id } = await newUser(t);
  const s = await signIn(t, email);
  const { secret } = await as(t.context.h, s.accessToken).auth.createApiToken({ name: "script" });
  const admin = as(t.context.h, adminToken).users;
  t.true((await admin.setUserDisabled({ user: id, disabled: true })).user?.disabled);
  await refusal(t, signIn(t, email), Code.Unauthenticated, /disabled/);
  await refusal(t, as(t.context.h, s.accessToken).auth.whoAmI({}), Code.Unauthenticated);
  await refusal(t, as(t.context.h, secret).auth.whoAmI({}), Code.Unauthenticated);
  await refusal(t, as(t.context.h, ).auth.refresh({ refreshToken: s.refreshToken }), Code.Unauthenticated);

  await admin.setUserDisabled({ user: id, disabled: false });
  t.truthy((await signIn(t, email)).accessToken);
  // Re-enabling does not revive tokens issued before.
  await refusal(t, as(t.context.h, secret).auth.whoAmI({}), Code.Unauthenticated);
  t.deepEqual((await auditActions(t, `user:${id}`)).filter((a) => a.startsWith("user.")), ["user.created", "user.disabled", "user.enabled"]);
});

test("a user may hold several roles; grants are idempotent; Trust Admin needs an existing trust", async (t) => {
  const { id } = await newUser(t, [{ role: Role.VIEWER }]);
  const admin = as(t.context.h, adminToken).users;
  await admin.grantRole({ user: id, grant: { role: Role.RESEARCHER } });
  await admin.grantRole({ user: id, grant: { role: Role.RESEARCHER } });
  const { user } = await admin.grantRole({ user: id, grant: { role: Role.TRUST_ADMIN, trustId: "trust-a" } });
  t.deepEqual(user?.roles.map((r) => [Role[r.role], r.trustId !== ""]), [["RESEARCHER", false], ["TRUST_ADMIN", true], ["VIEWER", false]]);
  t.is((await auditActions(t, `user:${id}`)).filter((a) => a === "role.granted").length, 2);

  await refusal(t, admin.grantRole({ user: id, grant: { role: Role.TRUST_ADMIN } }), Code.InvalidArgument, /^grant\.trust_id/);
  await refusal(t, admin.grantRole({ user: id, grant: { role: Role.TRUST_ADMIN, trustId: "no-such-trust" } }), Code.NotFound, /trust/);
  await refusal(t, admin.grantRole({ user: id, grant: { role: Role.VIEWER, trustId: "trust-a" } }), Code.InvalidArgument, /^grant\.trust_id/);
  await refusal(t, admin.grantRole({ user: id, grant: { role: Role.UNSPECIFIED } }), Code.InvalidArgument, /^grant\.role/);
  await refusal(t, admin.grantRole({ user: "ghost@example.org", grant: { role: Role.VIEWER } }), Code.NotFound);

  const after = await admin.revokeRole({ user: id, grant: { role: Role.TRUST_ADMIN, trustId: "trust-a" } });
  await admin.revokeRole({ user: id, grant: { role: Role.TRUST_ADMIN, trustId: "trust-a" } });
  t.deepEqual(after.user?.roles.map((r) => Role[r.role]), ["RESEARCHER", "VIEWER"]);
});

test.serial("the last enabled Admin can neither lose the role nor be disabled", async (t) => {
  const admin = as(t.context.h, adminToken);
  const me = (await admin.auth.whoAmI({})).user!;
  await refusal(t, admin.users.revokeRole({ user: me.id, grant: { role: Role.ADMIN } }), Code.FailedPrecondition, /last enabled Admin/);
  await refusal(t, admin.users.setUserDisabled({ user: me.id, disabled: true }), Code.FailedPrecondition, /last enabled Admin/);
  const second = await newUser(t, [{ role: Role.ADMIN }]);
  await admin.users.revokeRole({ user: second.id, grant: { role: Role.ADMIN } });
  t.deepEqual((await admin.users.getUser({ user: second.id })).user?.roles, []);
});

test("non-admins see only themselves and cannot call admin RPCs", async (t) => {
  const alice = await newUser(t);
  const bob = await newUser(t);
  const asAlice = as(t.context.h, (await signIn(t, alice.email)).accessToken).users;
  t.is((await asAlice.getUser({ user: alice.email.toUpperCase() })).user?.id, alice.id);
  const hidden = await refusal(t, asAlice.getUser({ user: bob.id }), Code.NotFound);
  const missing = await refusal(t, asAlice.getUser({ user: "00000000-0000-4000-8000-000000000000" }), Code.NotFound);
  t.is(hidden.rawMessage.replace(bob.id, "ID"), missing.rawMessage.replace("00000000-0000-4000-8000-000000000000", "ID"));
  await refusal(t, asAlice.listUsers({}), Code.PermissionDenied);
  await refusal(t, asAlice.createUser({ email: "x@example.org", password: PASSWORD }), Code.PermissionDenied);
  await refusal(t, asAlice.grantRole({ user: alice.id, grant: { role: Role.ADMIN } }), Code.PermissionDenied);
  await refusal(t, as(t.context.h, ).auth.whoAmI({}), Code.Unauthenticated, /sign in first/);
});

test("creating a user validates each field and refuses a duplicate email in any case", async (t) => {
  const admin = as(t.context.h, adminToken).users;
  await refusal(t, admin.createUser({ email: "not-an-email", password: PASSWORD }), Code.InvalidArgument, /^email/);
  await refusal(t, admin.createUser({ email: "weak@example.org", password: "short" }), Code.InvalidArgument, /^password: must be at least 12/);
  await refusal(t, admin.createUser({ email: "weak@example.org", password: "password1234" }), Code.InvalidArgument, /^password: is too common/);
  await refusal(t, admin.createUser({ email: "nopass@example.org" }), Code.InvalidArgument, /^password: required/);
  await refusal(t, admin.createUser({ email: "sso@example.org", oidcSubject: "abc" }), Code.FailedPrecondition, /single sign-on is not configured/);
  const { email } = await newUser(t);
  await refusal(t, admin.createUser({ email: email.toUpperCase(), password: PASSWORD }), Code.AlreadyExists, /already exists/);
  const created = await admin.createUser({ email: `viewer-${Date.now()}@example.org`, password: PASSWORD });
  t.deepEqual(created.user?.roles.map((r) => r.role), [Role.VIEWER]);
});

test("admins list users page by page", async (t) => {
  const admin = as(t.context.h, adminToken).users;
  await newUser(t);
  await newUser(t);
  const first = await admin.listUsers({ page: { pageSize: 2 } });
  t.is(first.users.length, 2);
  t.truthy(first.page?.nextPageToken);
  const second = await admin.listUsers({ page: { pageSize: 2, pageToken: first.page!.nextPageToken } });
  t.false(second.users.some((u) => first.users.some((f) => f.id === u.id)));
});

test("the audit chain over these changes verifies", async (t) => {
  const result = await verifyAuditChain(t.context.h.hub.db.em());
  t.true(result.ok, result.problem);
  t.true(result.entriesChecked >= 3);
});
