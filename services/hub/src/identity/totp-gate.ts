import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { principalKey } from "../auth/principal.js";

/** What a user who still has to enrol TOTP may call: enough to enrol, see who they are, and leave. */
const ALLOWED_BEFORE_ENROLMENT = new Set([
  "flip.hub.v1.AuthService/BeginTotpEnrollment",
  "flip.hub.v1.AuthService/ConfirmTotpEnrollment",
  "flip.hub.v1.AuthService/WhoAmI",
  "flip.hub.v1.AuthService/Logout",
  "flip.hub.v1.AuthService/Refresh",
]);

/**
 * Enforces "an admin requires TOTP" at request time, so requiring or resetting TOTP takes effect on the
 * user's next call. Runs after the authentication interceptor, which put the principal in the context.
 */
export const totpEnrollmentGate: Interceptor = (next) => async (req) => {
  const principal = req.contextValues.get(principalKey);
  if (principal.kind === "user" && principal.mustEnrollTotp && !ALLOWED_BEFORE_ENROLMENT.has(`${req.service.typeName}/${req.method.name}`)) {
    throw new ConnectError(
      "an admin requires a second factor for this account: enrol TOTP first (BeginTotpEnrollment, then ConfirmTotpEnrollment; `flip login` walks you through it)",
      Code.FailedPrecondition,
    );
  }
  return await next(req);
};
