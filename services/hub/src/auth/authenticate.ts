import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerToken, constantTimeEqual } from "@flip/shared/auth/keys.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { isAdmin, principalKey, type Principal } from "./principal.js";
import { policies, publicServices } from "./policies.js";

/** Turns a bearer token into a principal, or undefined when the token is not of its kind. */
export type TokenResolver = (token: string) => Promise<Principal | undefined>;

/** The bootstrap admin token from configuration. */
export function bootstrapTokenResolver(adminToken: string | undefined): TokenResolver {
  return async (token) => (adminToken && constantTimeEqual(token, adminToken) ? { kind: "bootstrap-admin" } : undefined);
}

/**
 * Resolves the caller of every hub RPC and enforces the RPC's policy before the handler runs.
 * Denied calls are logged with the RPC name only (never the token).
 */
export function authenticationInterceptor(resolvers: TokenResolver[], log: Logger): Interceptor {
  return (next) => async (req) => {
    const rpc = `${req.service.typeName}/${req.method.name}`;
    if (publicServices.has(req.service.typeName)) return next(req);
    const policy = policies[rpc];
    if (policy === undefined) {
      log.error({ rpc }, "RPC has no policy; refusing");
      throw new ConnectError(`${rpc} has no access policy`, Code.PermissionDenied);
    }
    if (policy === "trust-key" || policy === "public") return next(req);

    const token = bearerToken(req.header);
    if (!token) throw new ConnectError("sign in first: send 'Authorization: Bearer <token>'", Code.Unauthenticated);
    let principal: Principal | undefined;
    for (const resolve of resolvers) {
      principal = await resolve(token);
      if (principal) break;
    }
    if (!principal) {
      log.info({ rpc }, "call with an unknown or expired token refused");
      throw new ConnectError("the token is not valid (expired, revoked or unknown); sign in again", Code.Unauthenticated);
    }
    if (policy === "admin" && !isAdmin(principal)) {
      log.info({ rpc }, "non-admin call to an admin RPC refused");
      throw new ConnectError(`${rpc} needs the Admin role`, Code.PermissionDenied);
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
