import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { AuthService, type User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { hubUrl } from "../api/hub-url.js";
import { refreshSso } from "./sso.js";
import { loadTokens, refreshTimeFor, saveTokens, TOKENS_KEY, type SessionTokens } from "./tokens.js";

export type SessionState =
  | { status: "signed-out"; reason?: string }
  | { status: "signed-in"; user: User; authMethod: string };

/** Thrown by signIn when the account needs a TOTP code: the hub answered with `flip-totp-required: true`. */
export class TotpRequiredError extends Error {
  override readonly name = "TotpRequiredError";
}

/**
 * The browser's session: tokens in localStorage, shared by the console's tabs and renewed ahead of expiry,
 * and the signed-in user. Every console client goes through `transport`, which adds the bearer token and,
 * when the hub says the token is no good, refreshes once and retries; when that fails the tab is signed
 * out with the reason. Refresh tokens rotate and a reused one ends the session, so tabs renew one at a
 * time (a Web Lock) and take the tokens another tab already renewed.
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

  constructor(private readonly storage: Storage = window.localStorage) {
    this.#tokens = loadTokens(storage);
    this.#schedule();
    this.publicTransport = createConnectTransport({ baseUrl: hubUrl, useBinaryFormat: true });
    this.transport = createConnectTransport({ baseUrl: hubUrl, useBinaryFormat: true, interceptors: [this.#bearer] });
    window.addEventListener("storage", (e) => {
      if (e.key === TOKENS_KEY || e.key === null) this.#adoptOtherTab();
    });
  }

  get state(): SessionState {
    return this.#state;
  }

  /** For React's useSyncExternalStore. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** On page load: resumes the session this browser keeps, if it is still good. */
  async resume(): Promise<void> {
    if (!this.#tokens) return this.#set({ status: "signed-out" });
    await this.#loadUser().catch((e: unknown) => this.#end(e instanceof ConnectError && e.code === Code.Unauthenticated ? "Your session has ended; sign in again." : undefined));
  }

  async signInWithPassword(email: string, password: string, totpCode: string): Promise<void> {
    try {
      const r = await createClient(AuthService, this.publicTransport).login({ email, password, totpCode });
      this.#store(passwordTokens(r));
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
    if (Date.now() >= this.#tokens.refreshAt) await this.refresh();
    return this.#tokens?.accessToken;
  }

  /** Renews the access token; false (and signed out, with the reason) when the session cannot be renewed. */
  refresh(): Promise<boolean> {
    const stale = this.#tokens?.accessToken;
    const once = () => this.#refresh(stale);
    // Web Locks exist in secure contexts (https, localhost); elsewhere two tabs may rarely refresh at once.
    const locked = navigator.locks ? navigator.locks.request("flip.session.refresh", once) : once();
    return (this.#refreshing ??= locked.finally(() => (this.#refreshing = undefined)));
  }

  /** Renews `stale` unless another tab already did (then its tokens are taken). */
  async #refresh(stale: string | undefined): Promise<boolean> {
    const shared = loadTokens(this.storage);
    if (shared && shared.accessToken !== stale && Date.now() < shared.refreshAt) {
      this.#tokens = shared;
      this.#schedule();
      return true;
    }
    const tokens = shared ?? this.#tokens;
    if (!tokens) return false;
    try {
      if (tokens.kind === "sso") {
        this.#store(await refreshSso(tokens));
      } else {
        this.#store(passwordTokens(await createClient(AuthService, this.publicTransport).refresh({ refreshToken: tokens.refreshToken })));
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
    this.#schedule();
  }

  /** Renews in the background too, so a tab left open keeps its session while it streams. */
  #schedule(): void {
    clearTimeout(this.#timer);
    const tokens = this.#tokens;
    if (tokens?.refreshToken) this.#timer = setTimeout(() => void this.refresh(), Math.max(1_000, tokens.refreshAt - Date.now()));
  }

  /** Another tab signed in, renewed the tokens, or signed out. */
  #adoptOtherTab(): void {
    const tokens = loadTokens(this.storage);
    this.#tokens = tokens;
    this.#schedule();
    if (!tokens && this.#state.status === "signed-in") this.#set({ status: "signed-out", reason: "You signed out in another tab." });
    else if (tokens && this.#state.status === "signed-out") void this.#loadUser().catch(() => undefined);
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

/** The hub's own session tokens (Login and Refresh answer the same fields). */
function passwordTokens(r: { accessToken: string; accessTokenExpiresAt?: Timestamp; refreshToken: string }): SessionTokens {
  const accessExpiresAt = r.accessTokenExpiresAt ? timestampMs(r.accessTokenExpiresAt) : Date.now() + 300_000;
  return { kind: "password", accessToken: r.accessToken, accessExpiresAt, refreshAt: refreshTimeFor(accessExpiresAt), refreshToken: r.refreshToken };
}
