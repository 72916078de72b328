import { checkRegisteredClaims, decodeJwt, looksLikeJwt, MalformedTokenError, signHs256, unverifiedIssuer, UnknownSigningKeyError, verifyHs256Signature } from "./jwt.js";
import type { SigningKey } from "./signing-key.js";

/**
 * The hub's own access tokens: HS256 JWTs signed with the database-held key, so any replica can check
 * them. They name the user and the session; the session is still looked up on each call, so logging out
 * or disabling the user cuts the token off at once rather than when it expires.
 */
export const ACCESS_TOKEN_ISSUER = "flip-hub";
const ACCESS_TOKEN_AUDIENCE = "flip-hub";

export interface AccessTokenSubject {
  userId: string;
  sessionId: string;
}

export function issueAccessToken(key: SigningKey, subject: AccessTokenSubject, now: Date, ttlSeconds: number): { token: string; expiresAt: Date } {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttlSeconds;
  const token = signHs256({ iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE, sub: subject.userId, sid: subject.sessionId, iat, exp }, key.secret, key.kid);
  return { token, expiresAt: new Date(exp * 1000) };
}

/** True for tokens that claim to be ours (only routing: nothing is verified). */
export function isHubAccessToken(token: string): boolean {
  return looksLikeJwt(token) && unverifiedIssuer(token) === ACCESS_TOKEN_ISSUER;
}

/** Verifies signature (with whichever of `keys` the token names), issuer, audience and expiry; throws a TokenRejectedError subclass. */
export function verifyAccessToken(keys: readonly SigningKey[], token: string, now: Date): AccessTokenSubject {
  const jwt = decodeJwt(token);
  const key = keys.find((k) => k.kid === jwt.header.kid);
  if (!key) throw new UnknownSigningKeyError("the token was signed with a key this hub does not have (or no longer accepts)");
  verifyHs256Signature(jwt, key.secret);
  checkRegisteredClaims(jwt.claims, { issuer: ACCESS_TOKEN_ISSUER, audience: ACCESS_TOKEN_AUDIENCE, now, clockSkewSeconds: 5 });
  const sid = jwt.claims.sid;
  if (typeof sid !== "string") throw new MalformedTokenError("the token names no session");
  return { userId: jwt.claims.sub!, sessionId: sid };
}
