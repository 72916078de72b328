import { Code, ConnectError } from "@connectrpc/connect";
import { IdentityProviderUnavailableError } from "./jwks.js";
import { TokenRejectedError } from "./jwt.js";

/**
 * Identity failure modes beyond the shared domain errors (rpc/domain-errors.ts): they map to
 * UNAUTHENTICATED, RESOURCE_EXHAUSTED and UNAVAILABLE, which no other hub domain needs.
 */
export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
}

/** The caller's password was right but the account needs a TOTP code and none was sent. */
export class TotpCodeRequiredError extends AuthenticationError {}

/** Set on the error for TotpCodeRequiredError, so clients can prompt for the code without parsing messages. */
export const TOTP_REQUIRED_HEADER = "flip-totp-required";

export class TooManyAttemptsError extends Error {
  override readonly name = "TooManyAttemptsError";
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed sign-in attempts for this account; try again in ${Math.max(1, Math.ceil(retryAfterSeconds / 60))} minute(s)`);
  }
}

/** Converts an identity error to its Connect code; other errors pass through unchanged. */
export function identityErrorToConnect(e: unknown): unknown {
  if (e instanceof TotpCodeRequiredError) {
    return new ConnectError(e.message, Code.Unauthenticated, { [TOTP_REQUIRED_HEADER]: "true" }, undefined, e);
  }
  if (e instanceof AuthenticationError) return new ConnectError(e.message, Code.Unauthenticated, undefined, undefined, e);
  if (e instanceof TooManyAttemptsError) {
    return new ConnectError(e.message, Code.ResourceExhausted, { "retry-after": String(Math.ceil(e.retryAfterSeconds)) }, undefined, e);
  }
  if (e instanceof TokenRejectedError) return new ConnectError(`the token was refused: ${e.message}`, Code.Unauthenticated, undefined, undefined, e);
  if (e instanceof IdentityProviderUnavailableError) {
    return new ConnectError("the single sign-on provider cannot be reached to check the token; try again shortly", Code.Unavailable, undefined, undefined, e);
  }
  return e;
}

/** Runs `body`, rethrowing identity errors as ConnectErrors (for `answer`, which maps the shared ones). */
export async function withIdentityErrors<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    throw identityErrorToConnect(e);
  }
}
