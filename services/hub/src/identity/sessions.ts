import { LockMode } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { issueKey, parseKey, secretMatches } from "@flip/shared/auth/keys.js";
import { appendAudit } from "../audit/chain.js";
import { InvalidInputError } from "../domain/errors.js";
import { issueAccessToken } from "./access-tokens.js";
import { base32Decode } from "./base32.js";
import { RefreshToken, User, UserSession, type UserRole } from "./entities.js";
import { AuthenticationError, TotpCodeRequiredError } from "./errors.js";
import type { IdentityConfig } from "./identity-config.js";
import { attemptFailed, attemptSucceeded, beginAttempt, forgetAttempt } from "./login-throttle.js";
import { verifyAgainstNothing, verifyPassword } from "./passwords.js";
import { totpContext, type SecretSealer } from "./secret-sealer.js";
import type { SigningKey } from "./signing-key.js";
import { matchTotp } from "./totp.js";
import { emailKeyOf, rolesOf } from "./user-lookup.js";

/** What session functions need besides a unit of work. */
export interface SessionDeps {
  config: IdentityConfig;
  signingKey: SigningKey;
  /** Opens the sealed TOTP secrets. */
  secrets: SecretSealer;
  now(): Date;
}

export interface SessionTokens {
  accessToken: string;
  accessTokenExpiresAt: Date;
  refreshToken: string;
  refreshTokenExpiresAt: Date;
}

export interface LoginResult extends SessionTokens {
  user: User;
  roles: UserRole[];
}

export interface LoginInput {
  email: string;
  password: string;
  totpCode: string;
}

/** Wrong email and wrong password get the same words, so the answer does not tell which accounts exist. */
const WRONG_CREDENTIALS = "the email or password is wrong";

/**
 * Signs in with email, password and, for an enrolled account, a TOTP code. Throttled per account.
 * A user who must use TOTP but has not enrolled still gets a session; the TOTP gate then lets it do
 * nothing but enrol.
 */
export async function login(em: EntityManager, deps: SessionDeps, input: LoginInput): Promise<LoginResult> {
  if (input.email.trim() === "") throw new InvalidInputError("email", "required");
  if (input.password === "") throw new InvalidInputError("password", "required");
  const emailKey = emailKeyOf(input.email);
  const throttle = { maxFailures: deps.config.loginMaxFailures, windowSeconds: deps.config.loginFailureWindowSeconds };
  const attempt = await beginAttempt(em, emailKey, throttle);
  const user = await em.findOne(User, { emailKey });

  const fail = async (reason: string, message: string): Promise<never> => {
    await attemptFailed(em, throttle);
    if (user) {
      await em.transactional((tx) => appendAudit(tx, { actor: "anonymous", action: "auth.login_failed", target: `user:${user.id}`, after: { reason } }));
    }
    throw new AuthenticationError(message);
  };

  const passwordOk = user?.passwordHash ? await verifyPassword(input.password, user.passwordHash) : await verifyAgainstNothing(input.password);
  if (!user || !passwordOk) return await fail(user ? "wrong password" : "unknown email", WRONG_CREDENTIALS);
  if (user.disabledAt) return await fail("account disabled", "this account is disabled; ask an admin");
  if (user.totpSecret) {
    if (input.totpCode === "") {
      await forgetAttempt(em, attempt);
      throw new TotpCodeRequiredError("this account uses a second factor: send the 6-digit code from the authenticator app in totp_code");
    }
    const step = matchTotp(base32Decode(deps.secrets.open(user.totpSecret, totpContext(user.id))), input.totpCode.trim(), deps.now(), user.totpLastStep ?? undefined);
    if (step === undefined || !(await claimTotpStep(em, user.id, step))) return await fail("wrong totp code", "the TOTP code is wrong or was already used");
  }

  await attemptSucceeded(em, attempt);
  const result = await em.transactional(async (tx) => {
    const tokens = await startSession(tx, deps, user.id);
    await appendAudit(tx, { actor: `user:${user.id}`, action: "session.started", target: `user:${user.id}`, after: { method: "password", totp: Boolean(user.totpSecret) } });
    return tokens;
  });
  return { ...result, user, roles: await rolesOf(em, user.id) };
}

/**
 * Records that a TOTP step was used; false when it (or a later one) already was. Conditional on the stored
 * step, so two sign-ins racing with the same code cannot both pass.
 */
export async function claimTotpStep(em: EntityManager, userId: string, step: number): Promise<boolean> {
  const rows = await em.execute<unknown[]>(
    "update app_user set totp_last_step = ? where id = ? and (totp_last_step is null or totp_last_step < ?) returning id",
    [step, userId, step],
  );
  return rows.length === 1;
}

async function startSession(tx: EntityManager, deps: SessionDeps, userId: string): Promise<SessionTokens> {
  const now = deps.now();
  const session = tx.create(UserSession, { userId, createdAt: now, expiresAt: new Date(now.getTime() + deps.config.sessionMaxSeconds * 1000) });
  tx.persist(session);
  await tx.flush();
  return await issueTokens(tx, deps, session);
}

async function issueTokens(tx: EntityManager, deps: SessionDeps, session: UserSession): Promise<SessionTokens> {
  const now = deps.now();
  const key = issueKey("refresh");
  const refreshExpiresAt = new Date(Math.min(now.getTime() + deps.config.refreshTokenTtlSeconds * 1000, session.expiresAt.getTime()));
  tx.persist(tx.create(RefreshToken, { sessionId: session.id, keyId: key.keyId, secretHash: key.secretHash, createdAt: now, expiresAt: refreshExpiresAt }));
  await tx.flush();
  const access = await issueAccessToken(deps.signingKey, { userId: session.userId, sessionId: session.id }, now, deps.config.accessTokenTtlSeconds);
  return { accessToken: access.token, accessTokenExpiresAt: access.expiresAt, refreshToken: key.key, refreshTokenExpiresAt: refreshExpiresAt };
}

const NOT_A_REFRESH_TOKEN = "is not a refresh token (it starts with flip_refresh_)";

/**
 * Exchanges a refresh token for new tokens; the old refresh token stops working. Presenting an already
 * exchanged token means it was copied: the whole session is revoked, for the thief and the user alike.
 */
export async function refreshSession(em: EntityManager, deps: SessionDeps, refreshToken: string): Promise<SessionTokens> {
  const parsed = parseKey(refreshToken, "refresh");
  if (!parsed) throw new InvalidInputError("refresh_token", NOT_A_REFRESH_TOKEN);
  const outcome = await em.transactional(async (tx): Promise<{ tokens: SessionTokens } | { refused: string }> => {
    const row = await tx.findOne(RefreshToken, { keyId: parsed.keyId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!row || !secretMatches(parsed.secret, row.secretHash)) return { refused: "the refresh token is not valid; sign in again" };
    const session = await tx.findOneOrFail(UserSession, { id: row.sessionId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (session.revokedAt) return { refused: "the session has ended; sign in again" };
    if (row.rotatedAt) {
      session.revokedAt = deps.now();
      session.revokedReason = "refresh token reused";
      await tx.flush();
      await appendAudit(tx, { actor: "system", action: "session.revoked", target: `user:${session.userId}`, after: { sessionId: session.id, reason: session.revokedReason } });
      return { refused: "this refresh token was already used, so it may have been copied; the session is ended for safety; sign in again" };
    }
    const now = deps.now();
    if (row.expiresAt <= now || session.expiresAt <= now) return { refused: "the session has expired; sign in again" };
    const user = await tx.findOneOrFail(User, { id: session.userId });
    if (user.disabledAt) return { refused: "this account is disabled; ask an admin" };
    row.rotatedAt = now;
    await tx.flush();
    return { tokens: await issueTokens(tx, deps, session) };
  });
  if ("refused" in outcome) throw new AuthenticationError(outcome.refused);
  return outcome.tokens;
}

/** Ends the session behind a refresh token (any token of the session will do); idempotent. */
export async function logout(em: EntityManager, deps: SessionDeps, refreshToken: string): Promise<void> {
  const parsed = parseKey(refreshToken, "refresh");
  if (!parsed) throw new InvalidInputError("refresh_token", NOT_A_REFRESH_TOKEN);
  await em.transactional(async (tx) => {
    const row = await tx.findOne(RefreshToken, { keyId: parsed.keyId });
    if (!row || !secretMatches(parsed.secret, row.secretHash)) throw new AuthenticationError("the refresh token is not valid");
    const session = await tx.findOneOrFail(UserSession, { id: row.sessionId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (session.revokedAt) return;
    session.revokedAt = deps.now();
    session.revokedReason = "logout";
    await tx.flush();
    await appendAudit(tx, { actor: `user:${session.userId}`, action: "session.ended", target: `user:${session.userId}`, after: { sessionId: session.id } });
  });
}

/** Ends every open session of a user (disable, TOTP reset); returns how many were open. */
export async function revokeUserSessions(tx: EntityManager, userId: string, reason: string): Promise<number> {
  const rows = await tx.execute<unknown[]>(
    "update user_session set revoked_at = now(), revoked_reason = ? where user_id = ? and revoked_at is null and expires_at > now() returning id",
    [reason, userId],
  );
  return rows.length;
}

/** Whether a session still lets its access tokens through. */
export async function sessionIsOpen(em: EntityManager, sessionId: string, now: Date): Promise<boolean> {
  const session = await em.findOne(UserSession, { id: sessionId });
  return Boolean(session && !session.revokedAt && session.expiresAt > now);
}
