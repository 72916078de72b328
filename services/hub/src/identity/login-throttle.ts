import type { EntityManager } from "@mikro-orm/postgresql";
import { LimitReachedError } from "../domain/errors.js";
import { TooManyAttemptsError } from "./errors.js";

/**
 * Per-account sign-in throttling, kept in Postgres so every replica counts the same attempts.
 * Each attempt is recorded *before* the password is checked and counted with the others, so parallel
 * guesses cannot all slip in before the first failure is written. A successful sign-in clears the count.
 */
export interface ThrottleSettings {
  maxFailures: number;
  windowSeconds: number;
}

export interface Attempt {
  id: string;
  emailKey: string;
}

/** Records an attempt; throws TooManyAttemptsError (and forgets the attempt) when the account is throttled. */
export async function beginAttempt(em: EntityManager, emailKey: string, s: ThrottleSettings): Promise<Attempt> {
  const [row] = await em.execute<{ id: string }[]>("insert into login_attempt (email_key) values (?) returning id", [emailKey]);
  const id = String(row!.id);
  const [stats] = await em.execute<{ n: string; oldest: Date }[]>(
    "select count(*) as n, min(at) as oldest from login_attempt where email_key = ? and at > now() - make_interval(secs => ?)",
    [emailKey, s.windowSeconds],
  );
  if (Number(stats!.n) > s.maxFailures) {
    // Refused attempts are not counted, so the lock-out ends a window after the last real failure.
    await em.execute("delete from login_attempt where id = ?", [id]);
    const retryAfter = (new Date(stats!.oldest).getTime() + s.windowSeconds * 1000 - Date.now()) / 1000;
    throw new TooManyAttemptsError(Math.max(1, retryAfter));
  }
  return { id, emailKey };
}

/** The attempt failed: it stays counted. Also drops attempts too old to matter, for every account. */
export async function attemptFailed(em: EntityManager, s: ThrottleSettings): Promise<void> {
  await em.execute("delete from login_attempt where at < now() - make_interval(secs => ?)", [s.windowSeconds]);
}

/** The attempt neither failed nor succeeded (e.g. the TOTP code is still to come): it does not count. */
export async function forgetAttempt(em: EntityManager, attempt: Attempt): Promise<void> {
  await em.execute("delete from login_attempt where id = ?", [attempt.id]);
}

/** The account signed in: earlier failures no longer count against it. */
export async function attemptSucceeded(em: EntityManager, attempt: Attempt): Promise<void> {
  await em.execute("delete from login_attempt where email_key = ?", [attempt.emailKey]);
}

/** The hub as a whole is taking more sign-in attempts than it allows; not about any one account. */
export class SignInRateLimitedError extends LimitReachedError {
  override readonly name = "SignInRateLimitedError";
  constructor(retryAfterSeconds: number) {
    super(`too many sign-in attempts right now; try again in ${Math.max(1, Math.ceil(retryAfterSeconds))} s`, retryAfterSeconds);
  }
}

export interface GlobalLoginLimit {
  /** Sign-in attempts per second the hub accepts across all accounts, on average. */
  perSecond: number;
  /** Attempts accepted at once after a quiet spell. */
  burst: number;
}

/**
 * A token bucket over every sign-in attempt this replica sees, whatever the account: the per-account
 * throttle cannot stop one client trying many accounts (each try also costs a password hash).
 * In memory, so the hub's total is this limit times its replicas.
 */
export class GlobalLoginLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: GlobalLoginLimit,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = limit.burst;
    this.last = now();
  }

  /** Takes one attempt's token; throws TooManyAttemptsError when the bucket is empty. */
  take(): void {
    const t = this.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + ((t - this.last) / 1000) * this.limit.perSecond);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return;
    }
    throw new SignInRateLimitedError((1 - this.tokens) / this.limit.perSecond);
  }
}

