import test from "ava";
import { JwksCache } from "./jwks.js";
import {
  BadSignatureError,
  MalformedTokenError,
  MissingClaimError,
  TokenExpiredError,
  TokenNotYetValidError,
  UnknownSigningKeyError,
  UnsupportedAlgorithmError,
  WrongAudienceError,
  WrongIssuerError,
} from "./jwt.js";
import { IdentityProviderUnavailableError, OidcVerifier } from "./oidc.js";
import { startTestIssuer, type TestIssuer } from "./test-issuer.js";

let idp: TestIssuer;
let verifier: OidcVerifier;

test.before(async () => {
  idp = await startTestIssuer();
  verifier = new OidcVerifier({ issuer: idp.issuer, audience: idp.audience, jwksUrl: undefined, clockSkewSeconds: 30 });
});
test.after.always(async () => {
  await idp.close();
});

const now = () => Math.floor(Date.now() / 1000);

test("a token signed by the provider for our audience is accepted, with RS256 and with ES256", async (t) => {
  const rs = await verifier.verify(idp.sign({ sub: "alice" }));
  t.is(rs.subject, "alice");
  t.is(rs.issuer, idp.issuer);
  t.is((await verifier.verify(idp.sign({ sub: "bob" }, { alg: "ES256" }))).subject, "bob");
});

test("an audience list that includes ours is accepted", async (t) => {
  t.is((await verifier.verify(idp.sign({ aud: ["other-api", idp.audience] }))).subject, "subject-1");
});

test("an expired token is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({ exp: now() - 120, iat: now() - 600 })), { instanceOf: TokenExpiredError });
});

test("a token within the clock skew of its expiry is still accepted", async (t) => {
  await t.notThrowsAsync(verifier.verify(idp.sign({ exp: now() - 5 })));
});

test("a token that is not valid yet (nbf) is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({ nbf: now() + 600 })), { instanceOf: TokenNotYetValidError });
});

test("a token without an expiry or without a subject is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({ exp: undefined })), { instanceOf: MissingClaimError, message: /exp/ });
  await t.throwsAsync(verifier.verify(idp.sign({ sub: "" })), { instanceOf: MissingClaimError, message: /sub/ });
});

test("a forged token (signed with a key the provider never published, same kid) is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({}, { foreignKey: true })), { instanceOf: BadSignatureError });
});

test("a token whose payload was altered after signing is rejected", async (t) => {
  const [h, , s] = idp.sign({ sub: "alice" }).split(".");
  const payload = Buffer.from(JSON.stringify({ iss: idp.issuer, aud: idp.audience, sub: "admin", exp: now() + 300 })).toString("base64url");
  await t.throwsAsync(verifier.verify(`${h}.${payload}.${s}`), { instanceOf: BadSignatureError });
});

test("a token naming an unknown key is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({}, { kid: "no-such-key" })), { instanceOf: UnknownSigningKeyError, message: /no-such-key/ });
});

// Serial: these count JWKS fetches, which the concurrent tests also make.
test.serial("a token of another issuer is rejected without calling the provider", async (t) => {
  const fetches = idp.jwksFetches();
  await t.throwsAsync(verifier.verify(idp.sign({ iss: "https://evil.example" })), { instanceOf: WrongIssuerError });
  t.is(idp.jwksFetches(), fetches);
});

test("a token for another audience is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({ aud: "some-other-api" })), { instanceOf: WrongAudienceError });
  await t.throwsAsync(verifier.verify(idp.sign({ aud: undefined })), { instanceOf: WrongAudienceError });
});

test("an unsigned token (alg none) is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({}, { alg: "none" })), { instanceOf: UnsupportedAlgorithmError });
});

test("an HS256 token keyed with the provider's public key (algorithm confusion) is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({}, { alg: "HS256", hmacSecret: idp.rsaPublicKeyPem() })), { instanceOf: UnsupportedAlgorithmError });
});

test("an RS256 header on the EC key (key and algorithm mismatch) is rejected", async (t) => {
  await t.throwsAsync(verifier.verify(idp.sign({}, { alg: "RS256", kid: "ec-1" })), { instanceOf: UnknownSigningKeyError });
});

test("garbage is rejected as malformed", async (t) => {
  for (const token of ["", "abc", "a.b", "a.b.c.d", "e30.e30", "!!!.e30.sig"]) {
    await t.throwsAsync(verifier.verify(token), { instanceOf: MalformedTokenError }, token);
  }
});

test.serial("a key the provider adds later is found by refetching the key set on the unknown kid", async (t) => {
  const local = new OidcVerifier(
    { issuer: idp.issuer, audience: idp.audience, jwksUrl: undefined, clockSkewSeconds: 0 },
    new JwksCache({ issuer: idp.issuer, minRefetchIntervalMs: 0 }),
  );
  await local.verify(idp.sign());
  idp.addRsaKey("rsa-rotated");
  const fetches = idp.jwksFetches();
  t.is((await local.verify(idp.sign({ sub: "after-rotation" }, { kid: "rsa-rotated" }))).subject, "after-rotation");
  t.is(idp.jwksFetches(), fetches + 1);
});

test.serial("a token signed with a published RSA key shorter than 2048 bits is rejected", async (t) => {
  const local = new OidcVerifier(
    { issuer: idp.issuer, audience: idp.audience, jwksUrl: undefined, clockSkewSeconds: 0 },
    new JwksCache({ issuer: idp.issuer, minRefetchIntervalMs: 0 }),
  );
  idp.addRsaKey("rsa-short", 1024);
  await t.throwsAsync(local.verify(idp.sign({}, { kid: "rsa-short" })), { instanceOf: UnsupportedAlgorithmError, message: /2048/ });
});

test.serial("unknown kids do not make the hub refetch the key set more than once per interval", async (t) => {
  const local = new OidcVerifier(
    { issuer: idp.issuer, audience: idp.audience, jwksUrl: undefined, clockSkewSeconds: 0 },
    new JwksCache({ issuer: idp.issuer, minRefetchIntervalMs: 60_000 }),
  );
  await local.verify(idp.sign());
  const fetches = idp.jwksFetches();
  for (let i = 0; i < 5; i++) await t.throwsAsync(local.verify(idp.sign({}, { kid: `junk-${i}` })), { instanceOf: UnknownSigningKeyError });
  t.is(idp.jwksFetches(), fetches);
});

test("an unreachable provider is reported as unavailable, not as a bad token", async (t) => {
  const local = new OidcVerifier({ issuer: "http://127.0.0.1:9", audience: "x", jwksUrl: undefined, clockSkewSeconds: 0 });
  const token = idp.sign({ iss: "http://127.0.0.1:9", aud: "x" });
  await t.throwsAsync(local.verify(token), { instanceOf: IdentityProviderUnavailableError });
});

test("keys fetched earlier keep working while the provider is down", async (t) => {
  const own = await startTestIssuer();
  let clock = 0;
  const local = new OidcVerifier(
    { issuer: own.issuer, audience: own.audience, jwksUrl: undefined, clockSkewSeconds: 0 },
    new JwksCache({ issuer: own.issuer, maxAgeMs: 1_000, minRefetchIntervalMs: 0, timeoutMs: 500, now: () => clock }),
  );
  const token = own.sign({ sub: "steady" });
  await local.verify(token);
  await own.close();
  clock += 60_000;
  t.is((await local.verify(token)).subject, "steady");
});
