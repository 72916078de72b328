import { createPublicKey, type JsonWebKey } from "node:crypto";
import { createLocalJWKSet, errors, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from "jose";
import { DependencyUnavailableError } from "../domain/errors.js";
import { UnknownSigningKeyError } from "./jwt.js";

/** The identity provider's keys could not be fetched; the token can be neither accepted nor refused. */
export class IdentityProviderUnavailableError extends DependencyUnavailableError {
  override readonly name = "IdentityProviderUnavailableError";

  override wireMessage(): string {
    return "the single sign-on provider cannot be reached to check the token; try again shortly";
  }
}

export interface JwksOptions {
  issuer: string;
  /** When absent, read from the issuer's discovery document (falling back to `<issuer>/.well-known/jwks.json`). */
  jwksUrl?: string;
  /** How long fetched keys are trusted before they are fetched again. */
  maxAgeMs?: number;
  /** An unknown kid triggers a refetch (key rotation), at most this often, so junk tokens cannot flood the provider. */
  minRefetchIntervalMs?: number;
  timeoutMs?: number;
  now?: () => number;
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * The provider's public signing keys (JWKS), fetched over HTTP(S), cached, and refetched on an unknown kid.
 * jose picks and imports the key for a token (kid, and kty/crv/alg/use matching the token's algorithm);
 * fetching and caching stay here, because jose's remote set neither keeps stale keys while the provider is
 * down nor takes an injectable clock.
 */
export class JwksCache {
  private keys: KeySet = createLocalJWKSet({ keys: [] });
  private fetchedAt = -Infinity;
  /** When a fetch was last tried, successful or not: the refetch rate limit counts failures too. */
  private attemptedAt = -Infinity;
  private inFlight: Promise<void> | undefined;
  private jwksUrl: string | undefined;
  private readonly maxAgeMs: number;
  private readonly minRefetchIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: JwksOptions) {
    this.jwksUrl = opts.jwksUrl;
    this.maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
    this.minRefetchIntervalMs = opts.minRefetchIntervalMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
    this.now = opts.now ?? Date.now;
  }

  /** The key that signed a token with this header (a jose `JWTVerifyGetKey`), fetching the key set when needed. */
  async keyFor(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    const kid = header.kid;
    if (this.fetchedAt === -Infinity) {
      await this.refresh();
    } else if (this.now() - this.fetchedAt > this.maxAgeMs && this.mayRefetch()) {
      // While the provider is down, the keys it published last are better than none.
      await this.refresh().catch(() => undefined);
    }
    let found = await this.find(header, token);
    if (!found && this.mayRefetch()) {
      await this.refresh();
      found = await this.find(header, token);
    }
    if (!found) throw new UnknownSigningKeyError(kid ? `the provider has no signing key "${kid}"` : "the token names no key (kid) and no single published key fits it");
    return found;
  }

  private mayRefetch(): boolean {
    return this.now() - this.attemptedAt >= this.minRefetchIntervalMs;
  }

  private async find(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey | undefined> {
    try {
      return await this.keys(header, token);
    } catch (e) {
      // Several keys fit a token without kid: refused like an unknown key rather than tried one by one.
      if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) return undefined;
      throw e;
    }
  }

  private refresh(): Promise<void> {
    this.inFlight ??= this.fetchKeys().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    this.attemptedAt = this.now();
    this.jwksUrl ??= await this.discoverJwksUrl();
    const body = await getProviderJson(this.jwksUrl, this.timeoutMs);
    const jwks = Array.isArray((body as { keys?: unknown }).keys) ? (body as { keys: unknown[] }).keys : undefined;
    if (!jwks) throw new IdentityProviderUnavailableError(`the key set at ${this.jwksUrl} has no "keys" array`);
    this.keys = createLocalJWKSet({ keys: jwks.flatMap((jwk) => publicSigningKey(jwk)) } satisfies JSONWebKeySet);
    this.fetchedAt = this.now();
  }

  private async discoverJwksUrl(): Promise<string> {
    const doc = await readDiscoveryDocument(this.opts.issuer, this.timeoutMs);
    if (doc === undefined) return `${this.opts.issuer.replace(/\/+$/, "")}/.well-known/jwks.json`;
    if (typeof doc.jwks_uri !== "string") throw new IdentityProviderUnavailableError(`${discoveryUrl(this.opts.issuer)} has no jwks_uri`);
    return doc.jwks_uri;
  }
}

const discoveryUrl = (issuer: string) => `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;

/**
 * The provider's OpenID Connect discovery document; undefined when it publishes none (404). Throws
 * IdentityProviderUnavailableError when it cannot be read or names another issuer.
 */
export async function readDiscoveryDocument(issuer: string, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
  const url = discoveryUrl(issuer);
  const doc = await getProviderJson(url, timeoutMs, true);
  if (doc === undefined) return undefined;
  if (typeof doc !== "object" || doc === null) throw new IdentityProviderUnavailableError(`${url} is not a JSON object`);
  // OpenID Connect Discovery §4.3: the document must name the issuer we asked about.
  const named = (doc as { issuer?: unknown }).issuer;
  if (named !== issuer) throw new IdentityProviderUnavailableError(`${url} names issuer ${JSON.stringify(named)}, not ${issuer}`);
  return doc as Record<string, unknown>;
}

/** GETs a JSON document from the provider; with `allowMissing`, a 404 gives undefined. */
async function getProviderJson(url: string, timeoutMs: number, allowMissing = false): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: "application/json" } });
  } catch (e) {
    throw new IdentityProviderUnavailableError(`could not reach ${url}`, { cause: e });
  }
  if (allowMissing && res.status === 404) return undefined;
  if (!res.ok) throw new IdentityProviderUnavailableError(`${url} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch (e) {
    throw new IdentityProviderUnavailableError(`${url} did not answer JSON`, { cause: e });
  }
}

/** The public members of one JWK when it is a signing key we can use; anything else in the set is skipped. */
function publicSigningKey(jwk: unknown): JWK[] {
  if (typeof jwk !== "object" || jwk === null) return [];
  const k = jwk as JsonWebKey & { kid?: unknown; alg?: unknown; use?: unknown };
  if ((k.kty !== "RSA" && k.kty !== "EC") || (k.use !== undefined && k.use !== "sig")) return [];
  // Only the public members are kept, so a provider that mistakenly publishes "d" gives us no private key.
  const pub: JWK = k.kty === "RSA" ? { kty: "RSA", n: k.n, e: k.e } : { kty: "EC", crv: k.crv, x: k.x, y: k.y };
  try {
    // A key that does not import is skipped here, so one bad entry cannot break the tokens of the others.
    createPublicKey({ key: pub as JsonWebKey, format: "jwk" });
  } catch {
    return [];
  }
  return [{ ...pub, ...(typeof k.kid === "string" ? { kid: k.kid } : {}), ...(typeof k.alg === "string" ? { alg: k.alg } : {}) }];
}
