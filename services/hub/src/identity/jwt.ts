import { UnauthenticatedError } from "../domain/errors.js";

/**
 * Compact JWS (JWT) shapes and the errors that say why a token was refused. Every signature is checked
 * by jose: the hub's own HS256 access tokens in access-tokens.ts, identity providers' tokens (asymmetric
 * keys from their JWKS) in oidc.ts. The decoding here only routes a token to its verifier.
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
export abstract class TokenRejectedError extends UnauthenticatedError {
  abstract readonly reason: string;

  override wireMessage(): string {
    return `the token was refused: ${this.message}`;
  }
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

/** Asymmetric algorithms accepted from identity providers (verified by jose, see oidc.ts). HS* and "none" are deliberately absent. */
export const ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export function isAsymmetricAlgorithm(alg: string): alg is AsymmetricAlgorithm {
  return (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg);
}

function encodeSegment(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** Builds a compact JWS: `sign` receives the signing input and returns the raw signature. For tests that forge tokens (the test issuer, refused algorithms); real tokens are signed by jose. */
export function encodeJwt(header: JwtHeader, claims: JwtClaims, sign: (input: Buffer) => Buffer): string {
  const input = `${encodeSegment(header)}.${encodeSegment(claims)}`;
  return `${input}.${sign(Buffer.from(input, "ascii")).toString("base64url")}`;
}
