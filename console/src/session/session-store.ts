import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AuthService, type User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { hubUrl } from "../api/hub-url.js";
import { refreshSso } from "./sso.js";
import { loadTokens, saveTokens, type SessionTokens } from "./tokens.js";

/** Refresh this long before the access token expires, so no call goes out with one about to lapse. */
const REFRESH_AHEAD_MS = 60_000;

export type SessionState =
  | { status: "signed-out"; reason?: string }
  | { status: "signed-in"; user: User; authMethod: string };

/** Thrown by signIn when the account needs a TOTP code: the hub answered with `flip-totp-required: true`. */
export class TotpRequiredError extends Error {
  override readonly name = "TotpRequiredError";
}

/**
 * The tab's session: tokens in sessionStorage, renewed ahead of expiry, and the signed-in user. Every
 * console client goes through `transport`, which adds the bearer token and, when the hub says the
 * token is no good, refreshes once and retries; when that fails the tab is signed out with the reason.
 */
export class SessionStore {
  readonly transport: Transport;
  /** For the RPCs anyone may call (Login, Refresh, Logout, GetSignInOptions). */
  readonly publicTransport: Transport;
  #tokens: SessionTokens | undefined;
  #state: SessionState = { status: "signed-out" };
  #listeners = new Set<() => void>();
  #refreshing: Promise<boolean> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly storage: Storage = window.sessionStorage) {
    this.#tokens = loadTokens(storage);
    this.publicTransport = createConnectTransport({ baseUrl: hubUrl, useBinaryFormat: true });
    this.transport = createConnectTransport({ baseUrl: hubUrl, useBinaryFormat: true, interceptors: [this.#bearer] });
  }

  get state(): SessionState {
    return this.#state;
  }

  /** For React's useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** On page load: resumes a session kept in this tab, if it is still good. */
  async resume(): Promise<void> {
    if (!this.#tokens) return this.#set({ status: "signed-out" });
    await this.#loadUser().catch((e: unknown) => this.#end(e instanceof ConnectError && e.code === Code.Unauthenticated ? "Your session has ended; sign in again." : undefined));
  }

  async signInWithPassword(email: string, password: string, totpCode: string): Promise<void> {
    try {
      const r = await createClient(AuthService, this.publicTransport).login({ email, password, totpCode });
      this.#store({
        kind: "password",
        accessToken: r.accessToken,
        accessExpiresAt: r.accessTokenExpiresAt ? timestampMs(r.accessTokenExpiresAt) : Date.now() + 300_000,
        refreshToken: r.refreshToken,
      });
    } catch (e) {
      if (e instanceof ConnectError && e.metadata.get("flip-totp-required") === "true") throw new TotpRequiredError(e.rawMessage);
      throw e;
    }
    await this.#loadUser();
  }

  /** After single sign-on: the provider's tokens become the session's. */
  async signInWithTokens(tokens: SessionTokens): Promise<void> {
    this.#store(tokens);
    try {
      await this.#loadUser();
    } catch (e) {
      this.#store(undefined);
      throw e;
    }
  }

  /** Re-reads the signed-in user (after TOTP enrolment, for instance). */
  async reloadUser(): Promise<void> {
    await this.#loadUser();
  }

  async signOut(): Promise<void> {
    const tokens = this.#tokens;
    this.#end("You signed out.");
    if (tokens?.kind === "password" && tokens.refreshToken) {
      await createClient(AuthService, this.publicTransport).logout({ refreshToken: tokens.refreshToken }).catch(() => undefined);
    }
  }

  /** A current access token, refreshed first when it is about to expire; undefined when signed out. */
  async accessToken(): Promise<string | undefined> {
    if (!this.#tokens) return undefined;
    if (this.#tokens.accessExpiresAt - Date.now() < REFRESH_AHEAD_MS) await this.refresh();
    return this.#tokens?.accessToken;
  }

  /** Renews the access token; false (and signed out, with the reason) when the session cannot be renewed. */
  refresh(): Promise<boolean> {
    return (this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = undefined)));
  }

  async #refresh(): Promise<boolean> {
    const tokens = this.#tokens;
    if (!tokens) return false;
    try {
      if (tokens.kind === "sso") {
        this.#store(await refreshSso(tokens));
      } else {
        const r = await createClient(AuthService, this.publicTransport).refresh({ refreshToken: tokens.refreshToken });
        this.#store({
          kind: "password",
          accessToken: r.accessToken,
          accessExpiresAt: r.accessTokenExpiresAt ? timestampMs(r.accessTokenExpiresAt) : Date.now() + 300_000,
          refreshToken: r.refreshToken,
        });
      }
      return true;
    } catch (e) {
      // A hub that cannot be reached keeps the session: the next call tries again.
      if (e instanceof ConnectError && e.code === Code.Unavailable) return false;
      this.#end("Your session has ended; sign in again.");
      return false;
    }
  }

  #bearer: Interceptor = (next) => async (req) => {
    const token = await this.accessToken();
    if (token) req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (e) {
      // A token the hub no longer takes (rotated signing key, revoked session): refresh once and retry.
      if (!(e instanceof ConnectError) || e.code !== Code.Unauthenticated || !this.#tokens || req.stream) throw e;
      if (!(await this.refresh())) throw e;
      req.header.set("authorization", `Bearer ${this.#tokens!.accessToken}`);
      return await next(req);
    }
  };

  async #loadUser(): Promise<void> {
    const r = await createClient(AuthService, this.transport).whoAmI({});
    if (!r.user) throw new Error("the hub did not say who you are");
    this.#set({ status: "signed-in", user: r.user, authMethod: r.authMethod });
  }

  #store(tokens: SessionTokens | undefined): void {
    this.#tokens = tokens;
    saveTokens(this.storage, tokens);
    clearTimeout(this.#timer);
    // Renew in the background too, so a tab left open keeps its session while it streams.
    if (tokens && (tokens.refreshToken || tokens.kind === "password")) {
      const wait = Math.max(5_000, tokens.accessExpiresAt - Date.now() - REFRESH_AHEAD_MS);
      this.#timer = setTimeout(() => void this.refresh(), wait);
    }
  }

  #end(reason: string | undefined): void {
    this.#store(undefined);
    this.#set({ status: "signed-out", ...(reason ? { reason } : {}) });
  }

  #set(state: SessionState): void {
    this.#state = state;
    for (const l of this.#listeners) l();
  }
}
