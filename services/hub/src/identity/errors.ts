import { LimitReachedError, UnauthenticatedError } from "../domain/errors.js";

/**
 * Identity failure modes. Each subclasses the domain failure mode whose wire code it takes
 * (`rpc/to-connect-error.ts` maps them all).
 */
export class AuthenticationError extends UnauthenticatedError {
  override readonly name: string = "AuthenticationError";
}

/** Set on the error for TotpCodeRequiredError, so clients can prompt for the code without parsing messages. */
export const TOTP_REQUIRED_HEADER = "flip-totp-required";

/** The caller's password was right but the account needs a TOTP code and none was sent. */
export class TotpCodeRequiredError extends AuthenticationError {
  override readonly name = "TotpCodeRequiredError";
  override readonly headers = { [TOTP_REQUIRED_HEADER]: "true" };
}

export class TooManyAttemptsError extends LimitReachedError {
  override readonly name = "TooManyAttemptsError";
  constructor(retryAfterSeconds: number) {
    super(`too many failed sign-in attempts for this account; try again in ${Math.max(1, Math.ceil(retryAfterSeconds / 60))} minute(s)`, retryAfterSeconds);
  }
}
