import { Secret } from "otpauth";

/** RFC 4648 base32 (upper-case alphabet), as authenticator apps expect TOTP secrets; the codec is otpauth's. */
export class InvalidBase32Error extends Error {
  override readonly name = "InvalidBase32Error";
}

/** Encodes without padding: otpauth:// URIs and authenticator apps do not want '='. */
export function base32Encode(data: Uint8Array): string {
  return new Secret({ buffer: Uint8Array.from(data).buffer }).base32;
}

/** Decodes, ignoring case, spaces, dashes and trailing padding (people copy secrets by hand). */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s-]/g, "").replace(/=+$/, "").toUpperCase();
  // Checked here so the error names the character, whatever the library's wording.
  const bad = /[^A-Z2-7]/.exec(clean);
  if (bad) throw new InvalidBase32Error(`"${bad[0]}" is not a base32 character`);
  return Buffer.from(Secret.fromBase32(clean).bytes);
}
