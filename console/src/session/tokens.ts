/** What a signed-in tab keeps: the access token and how to renew it. Kept in sessionStorage (this tab only). */
export interface SessionTokens {
  /** "password": the hub's own session (Login/Refresh); "sso": the identity provider's tokens. */
  kind: "password" | "sso";
  accessToken: string;
  /** Epoch milliseconds. */
  accessExpiresAt: number;
  /** Empty when the provider issued none (SSO): the person signs in again when the access token expires. */
  refreshToken: string;
  /** For SSO: the provider's token endpoint and the console's client id, to refresh with. */
  sso?: { tokenEndpoint: string; clientId: string };
}

const KEY = "flip.session";

export function loadTokens(storage: Storage): SessionTokens | undefined {
  try {
    const raw = storage.getItem(KEY);
    return raw ? (JSON.parse(raw) as SessionTokens) : undefined;
  } catch {
    return undefined;
  }
}

export function saveTokens(storage: Storage, tokens: SessionTokens | undefined): void {
  if (tokens) storage.setItem(KEY, JSON.stringify(tokens));
  else storage.removeItem(KEY);
}
