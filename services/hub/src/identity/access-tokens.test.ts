import { randomBytes } from "node:crypto";
import test from "ava";
import { ACCESS_TOKEN_ISSUER, isHubAccessToken, issueAccessToken, verifyAccessToken } from "./access-tokens.js";
import { BadSignatureError, encodeJwt, TokenExpiredError, UnknownSigningKeyError, UnsupportedAlgorithmError } from "./jwt.js";

const key = { kid: "k1", secret: randomBytes(32) };
const subject = { userId: "8d0c7d4e-9a55-4b9e-9d55-3f3a4f0e2a11", sessionId: "0f6f2b7a-52c6-4d7e-a8d4-2b3c0e8f9a10" };
const t0 = new Date("2026-01-01T12:00:00Z");

test("an access token names its user and session and expires after its lifetime", (t) => {
  const { token, expiresAt } = issueAccessToken(key, subject, t0, 900);
  t.true(isHubAccessToken(token));
  t.is(expiresAt.getTime(), t0.getTime() + 900_000);
  t.deepEqual(verifyAccessToken([key], token, new Date(t0.getTime() + 899_000)), subject);
  t.throws(() => verifyAccessToken([key], token, new Date(t0.getTime() + 906_000)), { instanceOf: TokenExpiredError });
});

test("a token signed with another hub's key or altered after signing is refused", (t) => {
  const { token } = issueAccessToken(key, subject, t0, 900);
  t.throws(() => verifyAccessToken([{ kid: "k1", secret: randomBytes(32) }], token, t0), { instanceOf: BadSignatureError });
  t.throws(() => verifyAccessToken([{ kid: "k2", secret: key.secret }], token, t0), { instanceOf: UnknownSigningKeyError });
  const [h, , s] = token.split(".");
  const forged = Buffer.from(JSON.stringify({ iss: ACCESS_TOKEN_ISSUER, aud: "flip-hub", sub: "someone-else", sid: subject.sessionId, exp: 4e9 })).toString("base64url");
  t.throws(() => verifyAccessToken([key], `${h}.${forged}.${s}`, t0), { instanceOf: BadSignatureError });
});

test("an unsigned token that claims to be ours is refused", (t) => {
  const none = encodeJwt({ alg: "none", kid: "k1" }, { iss: ACCESS_TOKEN_ISSUER, aud: "flip-hub", sub: subject.userId, sid: subject.sessionId, exp: 4e9 }, () => Buffer.alloc(0));
  t.true(isHubAccessToken(none));
  t.throws(() => verifyAccessToken([key], none, t0), { instanceOf: UnsupportedAlgorithmError });
});

test("after a rotation a token is checked with the key it names: the replaced key still verifies its own tokens", (t) => {
  const rotated = { kid: "k2", secret: randomBytes(32) };
  const old = issueAccessToken(key, subject, t0, 900).token;
  const fresh = issueAccessToken(rotated, subject, t0, 900).token;
  t.deepEqual(verifyAccessToken([rotated, key], old, t0), subject);
  t.deepEqual(verifyAccessToken([rotated, key], fresh, t0), subject);
  t.throws(() => verifyAccessToken([rotated], old, t0), { instanceOf: UnknownSigningKeyError, message: /no longer accepts/ });
});
