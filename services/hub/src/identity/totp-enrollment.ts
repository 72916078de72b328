import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import { base32Decode } from "./base32.js";
import { User } from "./entities.js";
import { totpContext, type SecretSealer } from "./secret-sealer.js";
import { claimTotpStep } from "./sessions.js";
import { matchTotp, newTotpSecret, otpauthUri } from "./totp.js";
import { auditView, rolesOf } from "./user-lookup.js";

/**
 * Starts TOTP enrolment: a new secret is held as pending until the user proves, with a code, that their
 * authenticator app has it. Starting again replaces the pending secret.
 */
export async function beginTotpEnrollment(em: EntityManager, secrets: SecretSealer, userId: string, issuer: string): Promise<{ secretBase32: string; otpauthUri: string }> {
  return await em.transactional(async (tx) => {
    const user = await tx.findOneOrFail(User, { id: userId });
    if (user.totpSecret) throw new FailedPreconditionError("TOTP is already set up for this account; an admin can reset it (ResetTotp) if the device is lost");
    const secret = newTotpSecret();
    user.totpPendingSecret = secrets.seal(secret, totpContext(user.id));
    await tx.flush();
    await appendAudit(tx, { actor: `user:${user.id}`, action: "totp.enrollment_started", target: `user:${user.id}` });
    return { secretBase32: secret, otpauthUri: otpauthUri(secret, user.email, issuer) };
  });
}

/** Confirms enrolment with a current code; from then on sign-in needs a code. */
export async function confirmTotpEnrollment(em: EntityManager, secrets: SecretSealer, userId: string, code: string, now: Date): Promise<void> {
  if (code.trim() === "") throw new InvalidInputError("code", "required: the 6-digit code your authenticator app shows");
  await em.transactional(async (tx) => {
    const user = await tx.findOneOrFail(User, { id: userId });
    if (user.totpSecret) throw new FailedPreconditionError("TOTP is already set up for this account");
    if (!user.totpPendingSecret) throw new FailedPreconditionError("no TOTP enrolment is in progress; call BeginTotpEnrollment first");
    const step = matchTotp(base32Decode(secrets.open(user.totpPendingSecret, totpContext(user.id))), code.trim(), now);
    if (step === undefined) throw new InvalidInputError("code", "is not the current code for the new secret; check the device clock and try the next code");
    const before = auditView(user, await rolesOf(tx, user.id));
    // Sealed with the same context (the user id), so the sealed value moves as it is.
    user.totpSecret = user.totpPendingSecret;
    user.totpPendingSecret = null;
    user.totpEnrolledAt = now;
    await tx.flush();
    await claimTotpStep(tx, user.id, step);
    await appendAudit(tx, { actor: `user:${user.id}`, action: "totp.enrolled", target: `user:${user.id}`, before, after: auditView(user, await rolesOf(tx, user.id)) });
  });
}
