import type { Interceptor } from "@connectrpc/connect";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { TokenResolver } from "../auth/authenticate.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { registerIdentityHandlers } from "./handlers.js";
import { OidcVerifier } from "./oidc.js";
import { apiTokenResolver, bootstrapUntilFirstAdmin, oidcTokenResolver, sessionTokenResolver } from "./resolvers.js";
import { loadSigningKey, type SigningKey } from "./signing-key.js";
import { totpEnrollmentGate } from "./totp-gate.js";

/** The identity domain: AuthService and UserService, plus what the hub's interceptors need from it. */
export interface IdentityModule extends HubModule {
  /** Resolvers for every kind of bearer token, in the order to try them; `bootstrap` is the configured admin-token resolver. */
  resolvers(bootstrap: TokenResolver): TokenResolver[];
  /** Interceptors to run after authentication. */
  interceptors: Interceptor[];
}

export function identityModule(deps: HubDeps, now: () => Date = () => new Date()): IdentityModule {
  let signingKey: SigningKey | undefined;
  const key = (): SigningKey => {
    if (!signingKey) throw new Error("the identity module is used before start()");
    return signingKey;
  };
  const oidc = deps.config.identity.oidc ? new OidcVerifier(deps.config.identity.oidc) : undefined;
  const resolverDeps = { db: deps.db, log: deps.log, now };
  return {
    services: [AuthService, UserService],
    routes: (router) => registerIdentityHandlers(router, deps, () => ({ config: deps.config.identity, signingKey: key(), now })),
    async start() {
      signingKey = await loadSigningKey(deps.db.em());
      if (oidc) deps.log.info({ issuer: oidc.issuer }, "single sign-on enabled");
    },
    resolvers: (bootstrap) => [
      bootstrapUntilFirstAdmin(bootstrap, resolverDeps),
      apiTokenResolver(resolverDeps),
      sessionTokenResolver(resolverDeps, key),
      ...(oidc ? [oidcTokenResolver(resolverDeps, oidc)] : []),
    ],
    interceptors: [totpEnrollmentGate],
  };
}
