import { HOTP, Secret, TOTP } from "otpauth";

/** RFC 6238 TOTP (via otpauth) with the parameters every authenticator app supports: HMAC-SHA1, 30 s steps, 6 digits. */
export const TOTP_STEP_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Codes one step either side of now are accepted, for clock drift and typing time. */
const DRIFT_STEPS = 1;

function secretOf(bytes: Uint8Array): Secret {
  return new Secret({ buffer: Uint8Array.from(bytes).buffer });
}

/** RFC 4226 HOTP: the code for one counter value. */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  return HOTP.generate({ secret: secretOf(secret), algorithm: "SHA1", digits, counter });
}

/** The time step that `at` falls into. */
export function totpStep(at: Date): number {
  return TOTP.counter({ period: TOTP_STEP_SECONDS, timestamp: at.getTime() });
}

/** The TOTP code at time `at`. */
export function totpCode(secret: Uint8Array, at: Date, digits = TOTP_DIGITS): string {
  return TOTP.generate({ secret: secretOf(secret), algorithm: "SHA1", digits, period: TOTP_STEP_SECONDS, timestamp: at.getTime() });
}

/**
 * Finds the step whose code matches, within the drift window, or undefined.
 * `notAfterStep`: steps at or before it were used already and are refused (a code works once).
 */
export function matchTotp(secret: Uint8Array, code: string, at: Date, notAfterStep?: number): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const delta = TOTP.validate({
    token: code,
    secret: secretOf(secret),
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_STEP_SECONDS,
    timestamp: at.getTime(),
    window: DRIFT_STEPS,
  });
  if (delta === null) return undefined;
  const step = totpStep(at) + delta;
  return notAfterStep !== undefined && step <= notAfterStep ? undefined : step;
}

/** A new 160-bit secret (the RFC 4226 recommendation), base32 for authenticator apps. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI that authenticator apps read from a QR code. */
export function otpauthUri(secretBase32: string, account: string, issuer: string): string {
  return new TOTP({
    issuer,
    label: account,
    secret: Secret.fromBase32(secretBase32),
    algorithm: "SHA1",
    digits: TOTP_DIGITS,
    period: TOTP_STEP_SECONDS,
  }).toString();
}
