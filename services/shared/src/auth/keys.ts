import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * Secret keys of the form `flip_<kind>_<keyId>_<secret>`: the key id is public and lets the server find
 * the record without scanning; the secret is 256 random bits. Servers store only SHA-256(secret).
 */
export interface IssuedKey {
  /** The whole key, shown once. */
  key: string;
  keyId: string;
  /** Lower-case hex SHA-256 of the secret part. */
  secretHash: string;
}

export interface ParsedKey {
  kind: string;
  keyId: string;
  secret: string;
}

const KEY_RE = /^flip_([a-z]+)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function issueKey(kind: string): IssuedKey {
  if (!/^[a-z]+$/.test(kind)) throw new Error(`key kind must be lower-case letters, got ${kind}`);
  const keyId = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { key: `flip_${kind}_${keyId}_${secret}`, keyId, secretHash: hashSecret(secret) };
}

/** Parses a key, or returns undefined when it is not one of ours (never throws on bad input). */
export function parseKey(key: string, kind: string): ParsedKey | undefined {
  const m = KEY_RE.exec(key);
  if (!m || m[1] !== kind) return undefined;
  return { kind: m[1], keyId: m[2]!, secret: m[3]! };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time comparison of two strings of any length (e.g. a configured admin token). */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: Headers): string | undefined {
  const v = header.get("authorization");
  const m = v ? /^Bearer\s+(\S+)$/i.exec(v) : null;
  return m ? m[1] : undefined;
}
