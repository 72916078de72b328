import type { SingleSignOn } from "@flip/gen/flip/hub/v1/users_pb.js";
import { refreshTimeFor, type SessionTokens } from "./tokens.js";

/**
 * Single sign-on in the browser: OpenID Connect's authorization code flow with PKCE (RFC 7636), the
 * console being a public client. The hub names the provider's endpoints (GetSignInOptions); the provider's
 * access token is then the console's bearer token, which the hub verifies against the provider's keys.
 */

const PENDING = "flip.sso.pending";

interface PendingSignIn {
  state: string;
  verifier: string;
  returnTo: string;
  tokenEndpoint: string;
  clientId: string;
}

export const ssoRedirectUri = (): string => `${window.location.origin}/sso/callback`;

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const randomString = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

/** Sends the browser to the provider's sign-in page; it comes back to /sso/callback. */
export async function beginSso(sso: SingleSignOn, returnTo: string): Promise<void> {
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const pending: PendingSignIn = { state, verifier, returnTo, tokenEndpoint: sso.tokenEndpoint, clientId: sso.clientId };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(sso.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: sso.clientId,
    redirect_uri: ssoRedirectUri(),
    scope: sso.scope || "openid",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

export class SsoError extends Error {
  override readonly name = "SsoError";
}

interface TokenResponse {
  access_token?: string;
  expires_in?: number;
  refresh_token?: string;
  error?: string;
  error_description?: string;
}

async function postTokenRequest(tokenEndpoint: string, form: Record<string, string>): Promise<TokenResponse> {
  let res: Response;
  try {
    res = await fetch(tokenEndpoint, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) });
  } catch (e) {
    throw new SsoError(`the identity provider cannot be reached (${e instanceof Error ? e.message : String(e)})`);
  }
  const body = (await res.json().catch(() => ({}))) as TokenResponse;
  if (!res.ok || !body.access_token) throw new SsoError(`the identity provider refused the sign-in: ${body.error_description ?? body.error ?? `HTTP ${res.status}`}`);
  return body;
}

function tokensFrom(body: TokenResponse, sso: { tokenEndpoint: string; clientId: string }): SessionTokens {
  const accessExpiresAt = Date.now() + (body.expires_in ?? 300) * 1000;
  return {
    kind: "sso",
    accessToken: body.access_token!,
    accessExpiresAt,
    refreshAt: refreshTimeFor(accessExpiresAt),
    refreshToken: body.refresh_token ?? "",
    sso,
  };
}

/** On /sso/callback: checks the state, exchanges the code for tokens. Returns them and where to go next. */
export async function completeSso(search: string): Promise<{ tokens: SessionTokens; returnTo: string }> {
  const params = new URLSearchParams(search);
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (params.get("error")) throw new SsoError(`the identity provider did not sign you in: ${params.get("error_description") ?? params.get("error")}`);
  if (!raw) throw new SsoError("this sign-in was not started from this tab; start again");
  const pending = JSON.parse(raw) as PendingSignIn;
  const code = params.get("code");
  if (!code || params.get("state") !== pending.state) throw new SsoError("the identity provider's answer does not match this sign-in; start again");
  const body = await postTokenRequest(pending.tokenEndpoint, {
    grant_type: "authorization_code",
    code,
    redirect_uri: ssoRedirectUri(),
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  return { tokens: tokensFrom(body, { tokenEndpoint: pending.tokenEndpoint, clientId: pending.clientId }), returnTo: pending.returnTo };
}

/** New provider tokens from its refresh token; throws SsoError when the provider refuses. */
export async function refreshSso(tokens: SessionTokens): Promise<SessionTokens> {
  if (!tokens.sso || !tokens.refreshToken) throw new SsoError("single sign-on sessions without a refresh token end with their access token");
  const body = await postTokenRequest(tokens.sso.tokenEndpoint, { grant_type: "refresh_token", refresh_token: tokens.refreshToken, client_id: tokens.sso.clientId });
  return { ...tokensFrom(body, tokens.sso), refreshToken: body.refresh_token ?? tokens.refreshToken };
}
