/**
 * What a signed-in browser keeps: the access token and how to renew it. Kept in localStorage, so every tab of
 * the console shares one session (a link opened in a new tab stays signed in; signing out signs out every tab).
 */
export interface SessionTokens {
  /** "password": the hub's own session (Login/Refresh); "sso": the identity provider's tokens. */
  kind: "password" | "sso";
  accessToken: string;
  /** Epoch milliseconds. */
  accessExpiresAt: number;
  /** When to renew it (epoch ms): a third of its life, at most a minute, before it expires. */
  refreshAt: number;
  /** Empty when the provider issued none (SSO): the person signs in again when the access token expires. */
  refreshToken: string;
  /** For SSO: the provider's token endpoint and the console's client id, to refresh with. */
  sso?: { tokenEndpoint: string; clientId: string };
}

export const TOKENS_KEY = "flip.session";

/** When a token valid until `expiresAt` should be renewed. */
export function refreshTimeFor(expiresAt: number, now = Date.now()): number {
  return expiresAt - Math.min(60_000, Math.max(0, expiresAt - now) / 3);
}

export function loadTokens(storage: Storage): SessionTokens | undefined {
  try {
    const raw = storage.getItem(TOKENS_KEY);
    if (!raw) return undefined;
    const t = JSON.parse(raw) as SessionTokens;
    t.refreshAt ??= refreshTimeFor(t.accessExpiresAt);
    return t;
  } catch {
    return undefined;
  }
}

export function saveTokens(storage: Storage, tokens: SessionTokens | undefined): void {
  if (tokens) storage.setItem(TOKENS_KEY, JSON.stringify(tokens));
  else storage.removeItem(TOKENS_KEY);
}
