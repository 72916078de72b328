import { decodeProtectedHeader, jwtVerify, SignJWT } from "jose";
import { looksLikeJwt, MalformedTokenError, UnknownSigningKeyError, unverifiedIssuer } from "./jwt.js";
import type { SigningKey } from "./signing-key.js";
import { rejectionOf } from "./token-rejections.js";

/**
 * The hub's own access tokens: HS256 JWTs signed with the database-held key, so any replica can check
 * them (signed and verified by jose). They name the user and the session; the session is still looked
 * up on each call, so logging out or disabling the user cuts the token off at once rather than when it
 * expires.
 */
export const ACCESS_TOKEN_ISSUER = "flip-hub";
const ACCESS_TOKEN_AUDIENCE = "flip-hub";
/** Tolerance for replicas whose clocks disagree a little. */
const CLOCK_SKEW_SECONDS = 5;

export interface AccessTokenSubject {
  userId: string;
  sessionId: string;
}

export async function issueAccessToken(key: SigningKey, subject: AccessTokenSubject, now: Date, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttlSeconds;
  const token = await new SignJWT({ sid: subject.sessionId })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: key.kid })
    .setIssuer(ACCESS_TOKEN_ISSUER)
    .setAudience(ACCESS_TOKEN_AUDIENCE)
    .setSubject(subject.userId)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key.secret);
  return { token, expiresAt: new Date(exp * 1000) };
}

/** True for tokens that claim to be ours (only routing: nothing is verified). */
export function isHubAccessToken(token: string): boolean {
  return looksLikeJwt(token) && unverifiedIssuer(token) === ACCESS_TOKEN_ISSUER;
}

/** Verifies signature (with whichever of `keys` the token names), issuer, audience and expiry; throws a TokenRejectedError subclass. */
export async function verifyAccessToken(keys: readonly SigningKey[], token: string, now: Date): Promise<AccessTokenSubject> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch (e) {
    throw rejectionOf(e);
  }
  const key = keys.find((k) => k.kid === kid);
  if (!key) throw new UnknownSigningKeyError("the token was signed with a key this hub does not have (or no longer accepts)");
  try {
    const { payload } = await jwtVerify(token, key.secret, {
      algorithms: ["HS256"],
      issuer: ACCESS_TOKEN_ISSUER,
      audience: ACCESS_TOKEN_AUDIENCE,
      requiredClaims: ["exp", "sub", "sid"],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: now,
    });
    if (typeof payload.sid !== "string" || typeof payload.sub !== "string") throw new MalformedTokenError("the token names no session");
    return { userId: payload.sub, sessionId: payload.sid };
  } catch (e) {
    throw rejectionOf(e);
  }
}
