import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { TokenResolver } from "../auth/authenticate.js";
import type { Principal } from "../auth/principal.js";
import type { Database, EntityManager } from "../db/database.js";
import { isHubAccessToken, verifyAccessToken, type AccessTokenSubject } from "./access-tokens.js";
import { authenticateApiToken, isApiToken } from "./api-tokens.js";
import { User } from "./entities.js";
import { toConnectError } from "../rpc/to-connect-error.js";
import { AuthenticationError } from "./errors.js";
import { looksLikeJwt, TokenExpiredError, TokenRejectedError, UnknownSigningKeyError } from "./jwt.js";
import type { OidcVerifier } from "./oidc.js";
import { enabledAdminExists } from "./roles.js";
import { sessionIsOpen } from "./sessions.js";
import type { SigningKeyRing } from "./signing-key.js";
import { rolesOf } from "./user-lookup.js";

/**
 * One TokenResolver per kind of bearer token. Each recognises its own kind by shape and returns undefined
 * for any other; a token of its kind that fails a check is refused with a ConnectError that says why
 * (never echoing the token), so the caller knows whether to refresh, sign in again or ask an admin.
 */
export interface ResolverDeps {
  db: Database;
  log: Logger;
  now(): Date;
}

type AuthMethod = Extract<Principal, { kind: "user" }>["authMethod"];

/** The principal of an enabled user, with their current roles (read on every call, so changes apply at once). */
export async function principalFor(em: EntityManager, user: User, authMethod: AuthMethod): Promise<Principal> {
  if (user.disabledAt) throw new AuthenticationError("this account is disabled; ask an admin");
  const roles = await rolesOf(em, user.id);
  return {
    kind: "user",
    userId: user.id,
    email: user.email,
    roles: roles.map((r) => (r.trustId ? { role: r.role, trustId: r.trustId } : { role: r.role })),
    authMethod,
    // Single sign-on leaves the second factor to the identity provider.
    ...(user.totpRequired && !user.totpSecret && authMethod !== "oidc" ? { mustEnrollTotp: true } : {}),
  };
}

function refuse(log: Logger, kind: string, e: unknown): never {
  const err = toConnectError(e);
  if (err.code === Code.Internal) {
    log.error({ err: e, tokenKind: kind }, "checking a bearer token failed");
    throw err;
  }
  log.info({ tokenKind: kind, reason: e instanceof TokenRejectedError ? e.reason : err.rawMessage }, "bearer token refused");
  throw err;
}

/** Verifies with this replica's keys; a token naming a key it does not hold may come from a rotation it has not heard of yet. */
async function verifyWithKeyReload(keys: SigningKeyRing, token: string, now: Date): Promise<AccessTokenSubject> {
  try {
    return await verifyAccessToken(keys.verifying(), token, now);
  } catch (e) {
    if (!(e instanceof UnknownSigningKeyError) || !(await keys.reloadAfterUnknownKey())) throw e;
    return await verifyAccessToken(keys.verifying(), token, now);
  }
}

/** The hub's own access tokens (from Login and Refresh). */
export function sessionTokenResolver(deps: ResolverDeps, keys: SigningKeyRing): TokenResolver {
  return async (token) => {
    if (!isHubAccessToken(token)) return undefined;
    const now = deps.now();
    try {
      const { userId, sessionId } = await verifyWithKeyReload(keys, token, now);
      const em = deps.db.em();
      if (!(await sessionIsOpen(em, sessionId, now))) throw new AuthenticationError("the session has ended; sign in again");
      return await principalFor(em, await em.findOneOrFail(User, { id: userId }), "session");
    } catch (e) {
      if (e instanceof TokenExpiredError) refuse(deps.log, "session", new AuthenticationError("the access token has expired; refresh the session or sign in again"));
      refuse(deps.log, "session", e);
    }
  };
}

/** Personal API tokens (`flip_user_…`). */
export function apiTokenResolver(deps: ResolverDeps): TokenResolver {
  return async (token) => {
    if (!isApiToken(token)) return undefined;
    try {
      const em = deps.db.em();
      return await principalFor(em, await authenticateApiToken(em, token, deps.now()), "api-token");
    } catch (e) {
      refuse(deps.log, "api-token", e);
    }
  };
}

/** Access tokens of the configured OpenID Connect provider, mapped to the user linked to their subject. */
export function oidcTokenResolver(deps: ResolverDeps, verifier: OidcVerifier): TokenResolver {
  return async (token) => {
    if (!looksLikeJwt(token)) return undefined;
    try {
      const { issuer, subject } = await verifier.verify(token);
      const em = deps.db.em();
      const user = await em.findOne(User, { oidcIssuer: issuer, oidcSubject: subject });
      if (!user) {
        deps.log.info({ issuer, subject }, "single sign-on subject not linked to a user");
        throw new AuthenticationError(`no FLIP account is linked to your single sign-on identity (subject "${subject}"); an admin must link it (flip user create --oidc-subject)`);
      }
      return await principalFor(em, user, "oidc");
    } catch (e) {
      refuse(deps.log, "oidc", e);
    }
  };
}

/**
 * The bootstrap admin token works only until the first Admin user exists; then it is refused for every
 * RPC. "An admin exists" is cached briefly, so the check costs no query on most calls; "no admin yet" is
 * never cached, so the switch happens on the first call after the admin is created.
 */
export function bootstrapUntilFirstAdmin(inner: TokenResolver, deps: ResolverDeps, cacheMs = 5_000): TokenResolver {
  let adminSeenAt = -Infinity;
  return async (token) => {
    const principal = await inner(token);
    if (!principal) return undefined;
    if (Date.now() - adminSeenAt > cacheMs) {
      if (!(await enabledAdminExists(deps.db.em()))) return principal;
      adminSeenAt = Date.now();
    }
    deps.log.warn("bootstrap admin token refused: an Admin user exists");
    throw new ConnectError(
      "the bootstrap admin token only serves to create the first Admin; an Admin user exists now, so sign in as an admin (flip login) and use that session or an API token",
      Code.Unauthenticated,
    );
  };
}
