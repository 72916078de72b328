import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerToken, constantTimeEqual } from "@flip/shared/auth/keys.js";
import type { Logger } from "@flip/shared/logging/logger.js";
import { isAdmin, principalKey, type Principal } from "./principal.js";
import { policies, policyOf, publicServices } from "./policies.js";

/** Turns a bearer token into a principal, or undefined when the token is not of its kind. */
export type TokenResolver = (token: string) => Promise<Principal | undefined>;

/** The bootstrap admin token from configuration. */
export function bootstrapTokenResolver(adminToken: string | undefined): TokenResolver {
  return async (token) => (adminToken && constantTimeEqual(token, adminToken) ? { kind: "bootstrap-admin" } : undefined);
}

/**
 * The hub's check on a call's headers, run before its body is read: an RPC that needs a caller (all but
 * the public ones) is refused without a bearer credential, so that an anonymous caller cannot make the
 * hub read, decompress or decode a large body. Whether the credential is valid is decided afterwards,
 * once, by the interceptor below or the trust-key check.
 */
export function requireCredentialHeader(rpc: string, header: Headers): ConnectError | undefined {
  const policy = policyOf(rpc);
  if (policy === undefined) return new ConnectError(`${rpc} has no access policy`, Code.PermissionDenied);
  if (policy === "public" || bearerToken(header)) return undefined;
  return policy === "trust-key"
    ? new ConnectError("send the trust API key as 'Authorization: Bearer <key>'", Code.Unauthenticated)
    : new ConnectError(SIGN_IN_FIRST, Code.Unauthenticated);
}

const SIGN_IN_FIRST = "sign in first: send 'Authorization: Bearer <token>'";

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
    if (!token) throw new ConnectError(SIGN_IN_FIRST, Code.Unauthenticated);
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
