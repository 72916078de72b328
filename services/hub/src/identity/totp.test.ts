import test from "ava";
import { base32Decode } from "./base32.js";
import { hotp, matchTotp, newTotpSecret, otpauthUri, totpCode, totpStep } from "./totp.js";

const rfcSecret = Buffer.from("12345678901234567890");

test("HOTP matches the RFC 4226 appendix D test values", (t) => {
  const expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
  expected.forEach((code, counter) => t.is(hotp(rfcSecret, counter), code));
});

test("TOTP matches the RFC 6238 appendix B test values for SHA-1 (8 digits)", (t) => {
  const vectors: [number, string][] = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  for (const [seconds, code] of vectors) t.is(totpCode(rfcSecret, new Date(seconds * 1000), 8), code);
});

test("a code is accepted one step either side of now and refused further away", (t) => {
  const now = new Date(1_700_000_000_000);
  const at = (steps: number) => new Date(now.getTime() + steps * 30_000);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, now), now), totpStep(now));
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at(-1)), now), totpStep(now) - 1);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at(1)), now), totpStep(now) + 1);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at(-2)), now), undefined);
  t.is(matchTotp(rfcSecret, totpCode(rfcSecret, at(2)), now), undefined);
});

test("a code already used (its step at or before the last used step) is refused", (t) => {
  const now = new Date(1_700_000_000_000);
  const code = totpCode(rfcSecret, now);
  t.is(matchTotp(rfcSecret, code, now, totpStep(now)), undefined);
  t.is(matchTotp(rfcSecret, code, now, totpStep(now) - 1), totpStep(now));
});

test("anything but six digits is refused", (t) => {
  const now = new Date();
  for (const code of ["", "12345", "1234567", "12345a", " 123456"]) t.is(matchTotp(rfcSecret, code, now), undefined);
});

test("a new secret is 160 bits of base32 and the otpauth URI carries it with the issuer", (t) => {
  const secret = newTotpSecret();
  t.is(base32Decode(secret).length, 20);
  const uri = new URL(otpauthUri(secret, "ada@example.org", "FLIP"));
  t.is(uri.protocol, "otpauth:");
  t.is(uri.host, "totp");
  t.is(decodeURIComponent(uri.pathname), "/FLIP:ada@example.org");
  t.is(uri.searchParams.get("secret"), secret);
  t.is(uri.searchParams.get("issuer"), "FLIP");
  t.is(uri.searchParams.get("digits"), "6");
});
