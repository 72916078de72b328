import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { InvalidInputError } from "../domain/errors.js";

/**
 * Password hashing with scrypt (memory-hard: N=2^15, r=8 → 32 MiB per hash, ~50–100 ms on a server core).
 * The parameters are stored with each hash (`scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`), so they can be
 * raised later without invalidating existing passwords.
 */
export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { log2N: 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
export const MIN_PASSWORD_LENGTH = 12;
/** Long enough for any passphrase, short enough that hashing cannot be used to burn CPU. */
export const MAX_PASSWORD_LENGTH = 256;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.log2N;
  // Node refuses by default above 32 MiB; allow twice the need (128·N·r·p bytes).
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r * params.p };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, params);
  return ["scrypt", params.log2N, params.r, params.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

const HASH_RE = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/** Checks a password against a stored hash; a hash not in our format never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const m = HASH_RE.exec(stored);
  if (!m) return false;
  const params = { log2N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const expected = Buffer.from(m[5]!, "base64url");
  const key = await derive(password.slice(0, MAX_PASSWORD_LENGTH), Buffer.from(m[4]!, "base64url"), params);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same time as checking a real password, for sign-ins with an unknown email or an account
 * without a password, so response time does not tell which accounts exist.
 */
export async function verifyAgainstNothing(password: string): Promise<false> {
  dummyHash ??= hashPassword("not-a-real-password-" + randomBytes(8).toString("hex"));
  await verifyPassword(password, await dummyHash);
  return false;
}

/** Passwords people pick first; all are at least 12 characters, so the length rule alone lets them in. */
const COMMON_PASSWORDS = new Set([
  "password1234",
  "password12345",
  "password123456",
  "passwordpassword",
  "123456789012",
  "1234567890123",
  "12345678901234",
  "qwertyuiopasdfgh",
  "qwertyuiop123",
  "qwerty123456",
  "iloveyou1234",
  "letmein12345",
  "welcome12345",
  "administrator",
  "changeme1234",
  "trustno1trustno1",
  "abcdefghijkl",
  "abc123abc123",
  "passw0rdpassw0rd",
  "football1234",
  "monkey123456",
  "sunshine1234",
]);

/** How many different characters a password needs: rules out "aaaaaaaaaaaa" and "abababababab". */
const MIN_DISTINCT_CHARACTERS = 5;

/**
 * Rejects passwords that are short or obviously weak. Length is the rule that matters (NIST SP 800-63B);
 * composition rules are not imposed.
 */
export function checkPasswordPolicy(password: string, email: string, field = "password"): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new InvalidInputError(field, `must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) throw new InvalidInputError(field, `must be at most ${MAX_PASSWORD_LENGTH} characters`);
  const lower = password.toLowerCase();
  if (new Set(lower).size < MIN_DISTINCT_CHARACTERS) {
    throw new InvalidInputError(field, `uses too few different characters (at least ${MIN_DISTINCT_CHARACTERS})`);
  }
  if (COMMON_PASSWORDS.has(lower) || isRunOfCharacters(lower)) throw new InvalidInputError(field, "is too common or too easy to guess; choose another");
  const localPart = email.toLowerCase().split("@")[0] ?? "";
  if (localPart.length >= 3 && lower.includes(localPart)) throw new InvalidInputError(field, "must not contain the email address");
}

/** True for ascending or descending runs such as "abcdefghijklm" or "zyxwvutsrqpo". */
function isRunOfCharacters(s: string): boolean {
  const codes = [...s].map((c) => c.charCodeAt(0));
  const steps = new Set(codes.slice(1).map((c, i) => c - codes[i]!));
  return steps.size === 1 && [...steps].every((d) => Math.abs(d) === 1);
}
