import { createHmac, randomBytes } from "node:crypto";
import test from "ava";
import { ACCESS_TOKEN_ISSUER, isHubAccessToken, issueAccessToken, verifyAccessToken } from "./access-tokens.js";
import { BadSignatureError, encodeJwt, MalformedTokenError, TokenExpiredError, UnknownSigningKeyError, UnsupportedAlgorithmError } from "./jwt.js";

const key = { kid: "k1", secret: randomBytes(32) };
const subject = { userId: "8d0c7d4e-9a55-4b9e-9d55-3f3a4f0e2a11", sessionId: "0f6f2b7a-52c6-4d7e-a8d4-2b3c0e8f9a10" };
const t0 = new Date("2026-01-01T12:00:00Z");

test("an access token names its user and session and expires after its lifetime", async (t) => {
  const { token, expiresAt } = await issueAccessToken(key, subject, t0, 900);
  t.true(isHubAccessToken(token));
  t.is(expiresAt.getTime(), t0.getTime() + 900_000);
  t.deepEqual(await verifyAccessToken([key], token, new Date(t0.getTime() + 899_000)), subject);
  await t.throwsAsync(() => verifyAccessToken([key], token, new Date(t0.getTime() + 906_000)), { instanceOf: TokenExpiredError });
});

test("a token signed with another hub's key or altered after signing is refused", async (t) => {
  const { token } = await issueAccessToken(key, subject, t0, 900);
  await t.throwsAsync(() => verifyAccessToken([{ kid: "k1", secret: randomBytes(32) }], token, t0), { instanceOf: BadSignatureError });
  await t.throwsAsync(() => verifyAccessToken([{ kid: "k2", secret: key.secret }], token, t0), { instanceOf: UnknownSigningKeyError });
  const [h, , s] = token.split(".");
  const forged = Buffer.from(JSON.stringify({ iss: ACCESS_TOKEN_ISSUER, aud: "flip-hub", sub: "someone-else", sid: subject.sessionId, exp: 4e9 })).toString("base64url");
  await t.throwsAsync(() => verifyAccessToken([key], `${h}.${forged}.${s}`, t0), { instanceOf: BadSignatureError });
});

test("an unsigned token that claims to be ours is refused", async (t) => {
  const none = encodeJwt({ alg: "none", kid: "k1" }, { iss: ACCESS_TOKEN_ISSUER, aud: "flip-hub", sub: subject.userId, sid: subject.sessionId, exp: 4e9 }, () => Buffer.alloc(0));
  t.true(isHubAccessToken(none));
  await t.throwsAsync(() => verifyAccessToken([key], none, t0), { instanceOf: UnsupportedAlgorithmError });
});

test("after a rotation a token is checked with the key it names: the replaced key still verifies its own tokens", async (t) => {
  const rotated = { kid: "k2", secret: randomBytes(32) };
  const old = (await issueAccessToken(key, subject, t0, 900)).token;
  const fresh = (await issueAccessToken(rotated, subject, t0, 900)).token;
  t.deepEqual(await verifyAccessToken([rotated, key], old, t0), subject);
  t.deepEqual(await verifyAccessToken([rotated, key], fresh, t0), subject);
  await t.throwsAsync(() => verifyAccessToken([rotated], old, t0), { instanceOf: UnknownSigningKeyError, message: /no longer accepts/ });
});

test("a token signed with our key but another algorithm, or lacking its session, is refused", async (t) => {
  const claims = { iss: ACCESS_TOKEN_ISSUER, aud: "flip-hub", sub: subject.userId, sid: subject.sessionId, exp: 4e9 };
  const hs512 = encodeJwt({ alg: "HS512", kid: "k1" }, claims, (input) => createHmac("sha512", key.secret).update(input).digest());
  await t.throwsAsync(() => verifyAccessToken([key], hs512, t0), { instanceOf: UnsupportedAlgorithmError });
  const { sid: _sid, ...noSession } = claims;
  const sessionless = encodeJwt({ alg: "HS256", kid: "k1" }, noSession, (input) => createHmac("sha256", key.secret).update(input).digest());
  await t.throwsAsync(() => verifyAccessToken([key], sessionless, t0), { instanceOf: MalformedTokenError });
});
