import { type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { isAdmin } from "../auth/principal.js";
import { actorFor, answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { NotFoundError, PermissionError } from "../domain/errors.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { createApiToken, listApiTokens, revokeApiToken } from "./api-tokens.js";
import { TooManyAttemptsError } from "./errors.js";
import { GlobalLoginLimiter, SignInRateLimitedError } from "./login-throttle.js";
import { grantRole, revokeRole } from "./roles.js";
import type { SignInOptions } from "./sign-in-options.js";
import { login, logout, refreshSession, type SessionDeps, type SessionTokens } from "./sessions.js";
import { apiTokenToProto, roleRequestFromProto, userToProto } from "./to-proto.js";
import { beginTotpEnrollment, confirmTotpEnrollment } from "./totp-enrollment.js";
import { createUser, getUser, listUsers, resetTotp, setTotpRequired, setUserDisabled } from "./users.js";

/** How often refusals by the hub-wide sign-in limit are logged (with a count), at most. */
const RATE_LIMIT_WARNING_INTERVAL_MS = 10_000;

/** The signed-in user's id; the bootstrap token is no user, so self-service RPCs refuse it. */
function callerUserId(ctx: HandlerContext): string {
  const p = callerOf(ctx);
  if (p.kind !== "user") throw new PermissionError("the bootstrap admin token is not a user account: create an Admin user and sign in as them");
  return p.userId;
}

function tokensToProto(t: SessionTokens) {
  return {
    accessToken: t.accessToken,
    accessTokenExpiresAt: timestampFromDate(t.accessTokenExpiresAt),
    refreshToken: t.refreshToken,
    refreshTokenExpiresAt: timestampFromDate(t.refreshTokenExpiresAt),
  };
}

export function registerIdentityHandlers(router: ConnectRouter, { db, config, log }: HubDeps, session: () => SessionDeps, signInOptions: SignInOptions): void {
  const run = <T>(ctx: HandlerContext, body: () => Promise<T>) => answer(log, ctx, body);
  const oidcIssuer = config.identity.oidc?.issuer;
  const loginLimiter = new GlobalLoginLimiter(config.loginGlobalLimit);
  let lastWarning = 0;
  let refusedSinceWarning = 0;

  router.service(AuthService, {
    login: (req, ctx) =>
      run(ctx, async () => {
        try {
          loginLimiter.take();
          const r = await login(db.em(), session(), { email: req.email, password: req.password, totpCode: req.totpCode });
          log.info({ userId: r.user.id }, "signed in");
          return { ...tokensToProto(r), user: userToProto(r) };
        } catch (e) {
          // The account under attack is what an operator needs to know; the password never appears.
          if (e instanceof TooManyAttemptsError) log.warn({ email: req.email.trim().toLowerCase() }, "sign-in refused: too many failed attempts");
          if (e instanceof SignInRateLimitedError) {
            refusedSinceWarning++;
            // At most one line per interval: a flood of refused sign-ins must not become a flood of logs.
            if (Date.now() - lastWarning >= RATE_LIMIT_WARNING_INTERVAL_MS) {
              log.warn({ refused: refusedSinceWarning }, "sign-ins refused: the hub-wide sign-in rate limit was reached");
              lastWarning = Date.now();
              refusedSinceWarning = 0;
            }
          }
          throw e;
        }
      }),
    refresh: (req, ctx) => run(ctx, async () => tokensToProto(await refreshSession(db.em(), session(), req.refreshToken))),
    logout: (req, ctx) =>
      run(ctx, async () => {
        await logout(db.em(), session(), req.refreshToken);
        return {};
      }),
    beginTotpEnrollment: (_req, ctx) => run(ctx, () => beginTotpEnrollment(db.em(), session().secrets, callerUserId(ctx), config.identity.totpIssuer)),
    confirmTotpEnrollment: (req, ctx) =>
      run(ctx, async () => {
        await confirmTotpEnrollment(db.em(), session().secrets, callerUserId(ctx), req.code, new Date());
        return {};
      }),
    createApiToken: (req, ctx) =>
      run(ctx, async () => {
        const { token, secret } = await createApiToken(db.em(), actorFor(ctx), callerUserId(ctx), { name: req.name, ttlDays: req.ttlDays }, new Date());
        log.info({ tokenId: token.id, userId: token.userId }, "API token created");
        return { token: apiTokenToProto(token), secret };
      }),
    listApiTokens: (_req, ctx) => run(ctx, async () => ({ tokens: (await listApiTokens(db.em(), callerUserId(ctx))).map(apiTokenToProto) })),
    revokeApiToken: (req, ctx) =>
      run(ctx, async () => {
        const p = callerOf(ctx);
        await revokeApiToken(db.em(), actorFor(ctx), { userId: p.kind === "user" ? p.userId : undefined, isAdmin: isAdmin(p) }, req.tokenId.trim());
        return {};
      }),
    whoAmI: (_req, ctx) =>
      run(ctx, async () => {
        const p = callerOf(ctx);
        if (p.kind !== "user") return { authMethod: "bootstrap" };
        return { user: userToProto(await getUser(db.em(), p.userId)), authMethod: p.authMethod };
      }),
    getSignInOptions: (_req, ctx) => run(ctx, () => signInOptions.get()),
  });

  router.service(UserService, {
    createUser: (req, ctx) =>
      run(ctx, async () => {
        const created = await createUser(
          db.em(),
          actorFor(ctx),
          {
            email: req.email,
            name: req.name,
            password: req.password,
            roles: req.roles.map(roleRequestFromProto),
            totpRequired: req.totpRequired,
            oidcSubject: req.oidcSubject,
          },
          oidcIssuer,
        );
        log.info({ userId: created.user.id }, "user created");
        return { user: userToProto(created) };
      }),
    listUsers: (req, ctx) =>
      run(ctx, async () => {
        const page = readPage(req.page);
        const users = await listUsers(db.em(), page);
        return { users: users.map(userToProto), page: { nextPageToken: nextPageToken(page, users.length) } };
      }),
    getUser: (req, ctx) =>
      run(ctx, async () => {
        const p = callerOf(ctx);
        const em = db.em();
        const found = await getUser(em, req.user);
        // Others' accounts are "not found" to non-admins, so their existence cannot be probed.
        if (!isAdmin(p) && (p.kind !== "user" || found.user.id !== p.userId)) throw new NotFoundError("user", req.user.trim());
        return { user: userToProto(found) };
      }),
    grantRole: (req, ctx) => run(ctx, async () => ({ user: userToProto(await grantRole(db.em(), actorFor(ctx), req.user, roleRequestFromProto(req.grant))) })),
    revokeRole: (req, ctx) => run(ctx, async () => ({ user: userToProto(await revokeRole(db.em(), actorFor(ctx), req.user, roleRequestFromProto(req.grant))) })),
    setUserDisabled: (req, ctx) =>
      run(ctx, async () => {
        const r = await setUserDisabled(db.em(), actorFor(ctx), req.user, req.disabled);
        log.info({ userId: r.user.id, disabled: req.disabled }, "user disabled state set");
        return { user: userToProto(r) };
      }),
    resetTotp: (req, ctx) => run(ctx, async () => ({ user: userToProto(await resetTotp(db.em(), actorFor(ctx), req.user)) })),
    setTotpRequired: (req, ctx) => run(ctx, async () => ({ user: userToProto(await setTotpRequired(db.em(), actorFor(ctx), req.user, req.required)) })),
  });
}
