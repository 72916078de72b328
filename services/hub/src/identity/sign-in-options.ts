import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GetSignInOptionsResponseSchema } from "@flip/gen/flip/hub/v1/users_pb.js";
import { DependencyUnavailableError } from "../domain/errors.js";
import type { BrowserSsoSettings } from "./identity-config.js";
import { readDiscoveryDocument } from "./jwks.js";
import type { OidcSettings } from "./oidc.js";

/** The sign-in page cannot offer single sign-on right now: the provider's discovery document is unreadable. */
export class SignInOptionsUnavailableError extends DependencyUnavailableError {
  override readonly name = "SignInOptionsUnavailableError";

  override wireMessage(): string {
    return "the single sign-on provider cannot be reached; sign in with your password, or try again shortly";
  }
}

/** How long the provider's endpoints are trusted before they are read again. */
const MAX_AGE_MS = 3_600_000;

interface Endpoints {
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

/**
 * What the console's sign-in page offers: single sign-on when a provider and a browser client id are
 * configured, with the provider's authorization and token endpoints read from its discovery document
 * (cached for an hour; the last good copy is kept while the provider is down).
 */
export class SignInOptions {
  private endpoints: Endpoints | undefined;
  private fetchedAt = -Infinity;
  private inFlight: Promise<Endpoints> | undefined;

  constructor(
    private readonly oidc: OidcSettings | undefined,
    private readonly browser: BrowserSsoSettings | undefined,
    private readonly timeoutMs = 5_000,
  ) {}

  async get(): Promise<MessageInitShape<typeof GetSignInOptionsResponseSchema>> {
    if (!this.oidc || !this.browser) return {};
    const e = await this.currentEndpoints();
    return {
      sso: {
        issuer: this.oidc.issuer,
        clientId: this.browser.clientId,
        scope: this.browser.scope,
        displayName: this.browser.displayName,
        authorizationEndpoint: e.authorizationEndpoint,
        tokenEndpoint: e.tokenEndpoint,
      },
    };
  }

  /**
   * Origins the console's pages may call besides the hub (the provider's token endpoint), for the
   * Content-Security-Policy: the issuer's origin, and the token endpoint's once it is known.
   */
  connectOrigins(): string[] {
    if (!this.oidc || !this.browser) return [];
    const origins = new Set([new URL(this.oidc.issuer).origin]);
    if (this.endpoints) origins.add(new URL(this.endpoints.tokenEndpoint).origin);
    return [...origins];
  }

  /** Reads the endpoints ahead of the first sign-in page; a provider that is down is only logged by the caller. */
  warm(): Promise<unknown> {
    return this.oidc && this.browser ? this.currentEndpoints() : Promise.resolve();
  }

  private async currentEndpoints(): Promise<Endpoints> {
    if (this.endpoints && Date.now() - this.fetchedAt < MAX_AGE_MS) return this.endpoints;
    this.inFlight ??= this.discover().finally(() => (this.inFlight = undefined));
    try {
      return await this.inFlight;
    } catch (e) {
      if (this.endpoints) return this.endpoints;
      throw e;
    }
  }

  private async discover(): Promise<Endpoints> {
    const issuer = this.oidc!.issuer;
    let doc: Record<string, unknown> | undefined;
    try {
      doc = await readDiscoveryDocument(issuer, this.timeoutMs);
    } catch (e) {
      throw new SignInOptionsUnavailableError(e instanceof Error ? e.message : String(e), { cause: e });
    }
    const authorizationEndpoint = doc?.authorization_endpoint;
    const tokenEndpoint = doc?.token_endpoint;
    if (typeof authorizationEndpoint !== "string" || typeof tokenEndpoint !== "string") {
      throw new SignInOptionsUnavailableError(`${issuer}'s discovery document names no authorization_endpoint and token_endpoint; browsers cannot sign in with it`);
    }
    this.endpoints = { authorizationEndpoint, tokenEndpoint };
    this.fetchedAt = Date.now();
    return this.endpoints;
  }
}
