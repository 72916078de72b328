import { ConfigError, type SettingsReader } from "@flip/shared/config/settings.js";
import type { OidcSettings } from "./oidc.js";

export interface IdentityConfig {
  /** Lifetime of the access tokens that Login and Refresh issue. */
  accessTokenTtlSeconds: number;
  /** A refresh token unused this long expires (the session's idle timeout). */
  refreshTokenTtlSeconds: number;
  /** No session outlives this, however often it is refreshed. */
  sessionMaxSeconds: number;
  /** Ended sessions (expired or revoked) are deleted with their refresh tokens this long after they ended. */
  endedSessionRetentionSeconds: number;
  /** Failed sign-ins per account within the window before sign-in is refused for a while. */
  loginMaxFailures: number;
  loginFailureWindowSeconds: number;
  /** The name authenticator apps show next to the code. */
  totpIssuer: string;
  /** Single sign-on; undefined when no provider is configured. */
  oidc: OidcSettings | undefined;
  /** Single sign-on from the web console (a public client of the provider); undefined when not offered. */
  browserSso: BrowserSsoSettings | undefined;
}

export interface BrowserSsoSettings {
  /** The client id the provider knows the console by (FLIP_OIDC_CLIENT_ID). */
  clientId: string;
  /** Scopes the console asks for (FLIP_OIDC_SCOPE). */
  scope: string;
  /** The sign-in button's words (FLIP_OIDC_DISPLAY_NAME). */
  displayName: string;
}

const DAY = 86_400;

/** Plain HTTP only for a provider on this machine (development and tests); anything else needs HTTPS. */
function providerUrl(s: SettingsReader, name: string): string | undefined {
  const raw = s.url(name, undefined, ["https", "http"]);
  if (raw === undefined) return undefined;
  const u = new URL(raw);
  if (u.protocol === "http:" && !["localhost", "127.0.0.1", "[::1]"].includes(u.hostname)) {
    throw new ConfigError(name, "an https:// URL (http:// only for localhost)", raw);
  }
  return raw;
}

export function readIdentityConfig(s: SettingsReader): IdentityConfig {
  const refreshTokenTtlSeconds = s.int("FLIP_REFRESH_TOKEN_TTL_S", 12 * 3600, 300, 30 * DAY);
  const issuer = providerUrl(s, "FLIP_OIDC_ISSUER");
  const audience = s.optionalString("FLIP_OIDC_AUDIENCE");
  if (issuer && !audience) throw new ConfigError("FLIP_OIDC_AUDIENCE", "the audience your provider puts in access tokens for FLIP (set with FLIP_OIDC_ISSUER)", "");
  const clientId = s.optionalString("FLIP_OIDC_CLIENT_ID");
  if (clientId && !issuer) throw new ConfigError("FLIP_OIDC_CLIENT_ID", "set together with FLIP_OIDC_ISSUER (the provider the console signs in with)", clientId);
  return {
    accessTokenTtlSeconds: s.int("FLIP_ACCESS_TOKEN_TTL_S", 15 * 60, 30, 3600),
    refreshTokenTtlSeconds,
    sessionMaxSeconds: s.int("FLIP_SESSION_MAX_S", 7 * DAY, refreshTokenTtlSeconds, 90 * DAY),
    endedSessionRetentionSeconds: s.int("FLIP_ENDED_SESSION_RETENTION_S", 30 * DAY, 0, 365 * DAY),
    loginMaxFailures: s.int("FLIP_LOGIN_MAX_FAILURES", 5, 1, 1000),
    loginFailureWindowSeconds: s.int("FLIP_LOGIN_FAILURE_WINDOW_S", 15 * 60, 10, DAY),
    totpIssuer: s.string("FLIP_TOTP_ISSUER", "FLIP"),
    oidc: issuer
      ? { issuer, audience: audience!, jwksUrl: providerUrl(s, "FLIP_OIDC_JWKS_URL"), clockSkewSeconds: s.int("FLIP_OIDC_CLOCK_SKEW_S", 60, 0, 600) }
      : undefined,
    browserSso: clientId
      ? { clientId, scope: s.string("FLIP_OIDC_SCOPE", "openid"), displayName: s.string("FLIP_OIDC_DISPLAY_NAME", "Sign in with single sign-on") }
      : undefined,
  };
}
