import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from "node:crypto";

/**
 * Compact JWS (JWT) decoding and verification with node:crypto only. Verification is split in two steps
 * that callers always run together: the signature (with a key chosen by the caller, for an algorithm the
 * caller allows) and the registered claims (issuer, audience, expiry).
 */
export interface JwtHeader {
  alg: string;
  kid?: string;
  typ?: string;
}

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
  iat?: number;
  [claim: string]: unknown;
}

export interface DecodedJwt {
  header: JwtHeader;
  claims: JwtClaims;
  /** `<header>.<payload>` as sent: what the signature covers. */
  signingInput: Buffer;
  signature: Buffer;
}

/** Why a token was refused; `reason` is a short code for logs and metrics. */
export abstract class TokenRejectedError extends Error {
  abstract readonly reason: string;
}
export class MalformedTokenError extends TokenRejectedError {
  override readonly name = "MalformedTokenError";
  readonly reason = "malformed";
}
export class UnsupportedAlgorithmError extends TokenRejectedError {
  override readonly name = "UnsupportedAlgorithmError";
  readonly reason = "unsupported_alg";
}
export class UnknownSigningKeyError extends TokenRejectedError {
  override readonly name = "UnknownSigningKeyError";
  readonly reason = "unknown_kid";
}
export class BadSignatureError extends TokenRejectedError {
  override readonly name = "BadSignatureError";
  readonly reason = "bad_signature";
}
export class TokenExpiredError extends TokenRejectedError {
  override readonly name = "TokenExpiredError";
  readonly reason = "expired";
}
export class TokenNotYetValidError extends TokenRejectedError {
  override readonly name = "TokenNotYetValidError";
  readonly reason = "not_yet_valid";
}
export class WrongIssuerError extends TokenRejectedError {
  override readonly name = "WrongIssuerError";
  readonly reason = "wrong_issuer";
}
export class WrongAudienceError extends TokenRejectedError {
  override readonly name = "WrongAudienceError";
  readonly reason = "wrong_audience";
}
export class MissingClaimError extends TokenRejectedError {
  override readonly name = "MissingClaimError";
  readonly reason = "missing_claim";
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Far above any real token; stops a huge header from costing JSON parsing time. */
const MAX_TOKEN_LENGTH = 16 * 1024;

function parseJsonObject(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    throw new MalformedTokenError(`the token's ${what} is not base64url JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new MalformedTokenError(`the token's ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Splits and parses a compact JWS without checking anything but its shape. */
export function decodeJwt(token: string): DecodedJwt {
  if (token.length > MAX_TOKEN_LENGTH) throw new MalformedTokenError("the token is too long");
  const parts = token.split(".");
  if (parts.length !== 3 || !parts.every((p, i) => SEGMENT.test(p) || (i === 2 && p === ""))) {
    throw new MalformedTokenError("not a JWT (three base64url parts separated by dots)");
  }
  const header = parseJsonObject(parts[0]!, "header");
  if (typeof header.alg !== "string") throw new MalformedTokenError("the token header has no alg");
  if (header.kid !== undefined && typeof header.kid !== "string") throw new MalformedTokenError("the token header's kid is not a string");
  if (header.crit !== undefined) throw new MalformedTokenError("the token header lists critical extensions we do not support");
  return {
    header: header as unknown as JwtHeader,
    claims: parseJsonObject(parts[1]!, "payload") as JwtClaims,
    signingInput: Buffer.from(`${parts[0]}.${parts[1]}`, "ascii"),
    signature: Buffer.from(parts[2]!, "base64url"),
  };
}

/** True when the string has the shape of a compact JWS (routing only; nothing is verified). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/** The unverified `iss` claim, for choosing which verifier a token goes to. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).claims.iss;
    return typeof iss === "string" ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** Asymmetric algorithms accepted from identity providers. HS* and "none" are deliberately absent. */
export type AsymmetricAlgorithm = "RS256" | "RS384" | "RS512" | "PS256" | "ES256" | "ES384";

interface AlgorithmSpec {
  hash: string;
  keyType: "rsa" | "ec";
  curve?: string;
  pss?: boolean;
}

const ASYMMETRIC: Record<AsymmetricAlgorithm, AlgorithmSpec> = {
  RS256: { hash: "sha256", keyType: "rsa" },
  RS384: { hash: "sha384", keyType: "rsa" },
  RS512: { hash: "sha512", keyType: "rsa" },
  PS256: { hash: "sha256", keyType: "rsa", pss: true },
  ES256: { hash: "sha256", keyType: "ec", curve: "prime256v1" },
  ES384: { hash: "sha384", keyType: "ec", curve: "secp384r1" },
};

export function isAsymmetricAlgorithm(alg: string): alg is AsymmetricAlgorithm {
  return Object.hasOwn(ASYMMETRIC, alg);
}

/** Below this an RSA key is breakable; RFC 7518 §3.3 asks for at least 2048 bits. */
const MIN_RSA_BITS = 2048;

/** Checks the signature with `key`; the key's type must fit the token's algorithm (no algorithm confusion). */
export function verifyAsymmetricSignature(jwt: DecodedJwt, key: KeyObject): void {
  const alg = jwt.header.alg;
  if (!isAsymmetricAlgorithm(alg)) throw new UnsupportedAlgorithmError(`tokens signed with ${alg} are not accepted`);
  const spec = ASYMMETRIC[alg];
  const details = key.asymmetricKeyDetails;
  const keyType = key.asymmetricKeyType === "rsa-pss" ? "rsa" : key.asymmetricKeyType;
  if (key.type !== "public" || keyType !== spec.keyType) throw new UnsupportedAlgorithmError(`the signing key does not fit algorithm ${alg}`);
  if (spec.keyType === "rsa" && (details?.modulusLength ?? 0) < MIN_RSA_BITS) throw new UnsupportedAlgorithmError(`the RSA signing key is shorter than ${MIN_RSA_BITS} bits`);
  if (spec.curve && details?.namedCurve !== spec.curve) throw new UnsupportedAlgorithmError(`the signing key's curve does not fit algorithm ${alg}`);
  const ok = verify(
    spec.hash,
    jwt.signingInput,
    spec.keyType === "ec"
      ? { key, dsaEncoding: "ieee-p1363" } // JWS carries r||s, not DER (RFC 7518 §3.4)
      : spec.pss
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : key,
    jwt.signature,
  );
  if (!ok) throw new BadSignatureError("the token's signature does not verify");
}

function hs256(input: Buffer | string, secret: Uint8Array): Buffer {
  return createHmac("sha256", secret).update(input).digest();
}

/** Checks an HS256 signature made with one of our own secrets. */
export function verifyHs256Signature(jwt: DecodedJwt, secret: Uint8Array): void {
  if (jwt.header.alg !== "HS256") throw new UnsupportedAlgorithmError(`tokens signed with ${jwt.header.alg} are not accepted here`);
  const expected = hs256(jwt.signingInput, secret);
  if (jwt.signature.length !== expected.length || !timingSafeEqual(jwt.signature, expected)) {
    throw new BadSignatureError("the token's signature does not verify");
  }
}

function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Builds a compact JWS: `sign` receives the signing input and returns the raw signature. */
export function encodeJwt(header: JwtHeader, claims: JwtClaims, sign: (input: Buffer) => Buffer): string {
  const input = `${encodeSegment(header)}.${encodeSegment(claims)}`;
  return `${input}.${sign(Buffer.from(input, "ascii")).toString("base64url")}`;
}

export function signHs256(claims: JwtClaims, secret: Uint8Array, kid: string): string {
  return encodeJwt({ alg: "HS256", typ: "JWT", kid }, claims, (input) => hs256(input, secret));
}

export interface ClaimExpectations {
  issuer: string;
  audience: string;
  now: Date;
  /** Tolerance for clocks that disagree a little. */
  clockSkewSeconds: number;
}

/** Checks iss, aud, exp (required), nbf and iat (when present), and that sub is set. */
export function checkRegisteredClaims(claims: JwtClaims, expect: ClaimExpectations): void {
  const now = expect.now.getTime() / 1000;
  const skew = expect.clockSkewSeconds;
  if (claims.iss !== expect.issuer) throw new WrongIssuerError("the token was issued by someone else");
  const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!audiences.includes(expect.audience)) throw new WrongAudienceError("the token was issued for another audience");
  if (typeof claims.exp !== "number") throw new MissingClaimError("the token has no expiry (exp)");
  if (now >= claims.exp + skew) throw new TokenExpiredError("the token has expired");
  if (claims.nbf !== undefined && (typeof claims.nbf !== "number" || now < claims.nbf - skew)) throw new TokenNotYetValidError("the token is not valid yet (nbf)");
  if (claims.iat !== undefined && (typeof claims.iat !== "number" || now < claims.iat - skew)) throw new TokenNotYetValidError("the token was issued in the future (iat)");
  if (typeof claims.sub !== "string" || claims.sub === "") throw new MissingClaimError("the token has no subject (sub)");
}
