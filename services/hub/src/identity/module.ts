import type { Interceptor } from "@connectrpc/connect";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { TokenResolver } from "../auth/authenticate.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { registerIdentityHandlers } from "./handlers.js";
import { OidcVerifier } from "./oidc.js";
import { apiTokenResolver, bootstrapUntilFirstAdmin, oidcTokenResolver, sessionTokenResolver } from "./resolvers.js";
import { SESSION_SWEEP_INTERVAL_MS, sweepEndedSessions } from "./session-sweep.js";
import { prepareSecretSealer, readSecretsKeyFile, type SecretSealer } from "./secret-sealer.js";
import { SignInOptions } from "./sign-in-options.js";
import { SigningKeyRing } from "./signing-key.js";
import { totpEnrollmentGate } from "./totp-gate.js";

/** The identity domain: AuthService and UserService, plus what the hub's interceptors need from it. */
export interface IdentityModule extends HubModule {
  /** Resolvers for every kind of bearer token, in the order to try them; `bootstrap` is the configured admin-token resolver. */
  resolvers(bootstrap: TokenResolver): TokenResolver[];
  /** Interceptors to run after authentication. */
  interceptors: Interceptor[];
  /** How browsers sign in (the console's sign-in page and its Content-Security-Policy). */
  signInOptions: SignInOptions;
}

export function identityModule(deps: HubDeps, now: () => Date = () => new Date()): IdentityModule {
  const keys = new SigningKeyRing(deps.db, deps.log);
  let sealer: SecretSealer | undefined;
  const secrets = (): SecretSealer => {
    if (!sealer) throw new Error("the identity module is used before start()");
    return sealer;
  };
  const oidc = deps.config.identity.oidc ? new OidcVerifier(deps.config.identity.oidc) : undefined;
  const resolverDeps = { db: deps.db, log: deps.log, now };
  const signInOptions = new SignInOptions(deps.config.identity.oidc, deps.config.identity.browserSso);
  const sessionSweep = new PeriodicJob(
    "session-sweep",
    SESSION_SWEEP_INTERVAL_MS,
    async () => {
      const n = await sweepEndedSessions(deps.db.em(), deps.config.identity.endedSessionRetentionSeconds);
      if (n > 0) deps.log.info({ deleted: n }, "ended sessions deleted after their retention period");
    },
    deps.log,
  );
  return {
    services: [AuthService, UserService],
    signInOptions,
    routes: (router) => registerIdentityHandlers(router, deps, () => ({ config: deps.config.identity, signingKey: keys.signing(), secrets: secrets(), now }), signInOptions),
    async start() {
      await keys.start();
      const keyFile = deps.config.secretsKeyFile;
      sealer = await prepareSecretSealer(deps.db.em(), keyFile ? readSecretsKeyFile(keyFile.path, keyFile.createIfMissing) : undefined, deps.log);
      if (oidc) deps.log.info({ issuer: oidc.issuer, console: Boolean(deps.config.identity.browserSso) }, "single sign-on enabled");
      // Read ahead, so the console's first page can already name the provider's token endpoint.
      signInOptions.warm().catch((e: unknown) => deps.log.warn({ err: e instanceof Error ? e.message : String(e) }, "single sign-on for the console: the provider's discovery document cannot be read yet"));
      sessionSweep.start();
      void sessionSweep.runNow();
    },
    async stop() {
      await sessionSweep.stop();
      keys.stop();
    },
    resolvers: (bootstrap) => [
      bootstrapUntilFirstAdmin(bootstrap, resolverDeps),
      apiTokenResolver(resolverDeps),
      sessionTokenResolver(resolverDeps, keys),
      ...(oidc ? [oidcTokenResolver(resolverDeps, oidc)] : []),
    ],
    interceptors: [totpEnrollmentGate],
  };
}
