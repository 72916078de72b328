import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { revokeUserApiTokens } from "./api-tokens.js";
import { User, UserRole } from "./entities.js";
import { checkPasswordPolicy, hashPassword } from "./passwords.js";
import { assertAnotherAdmin, resolveRole, type ResolvedRole, type RoleRequest } from "./roles.js";
import { revokeUserSessions } from "./sessions.js";
import { auditView, emailKeyOf, findUser, rolesOf, rolesOfMany, type UserWithRoles } from "./user-lookup.js";

export interface NewUser {
  email: string;
  name: string;
  /** Empty for a user who signs in only through single sign-on. */
  password: string;
  /** Empty gives Viewer. */
  roles: RoleRequest[];
  totpRequired: boolean;
  /** Subject at the configured OIDC provider; empty for none. */
  oidcSubject: string;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validateEmail(email: string): string {
  const e = email.trim();
  if (e === "") throw new InvalidInputError("email", "required");
  if (e.length > 254 || !EMAIL_RE.test(e)) throw new InvalidInputError("email", "is not an email address");
  return e;
}

/** Creates a user with their roles; the oidcIssuer is the configured provider's, or undefined when none is. */
export async function createUser(em: EntityManager, actor: string, input: NewUser, oidcIssuer: string | undefined): Promise<UserWithRoles> {
  const email = validateEmail(input.email);
  const name = input.name.trim();
  if (name.length > 120) throw new InvalidInputError("name", "must be at most 120 characters");
  const oidcSubject = input.oidcSubject.trim();
  if (oidcSubject.length > 255) throw new InvalidInputError("oidc_subject", "must be at most 255 characters");
  if (oidcSubject && !oidcIssuer) {
    throw new FailedPreconditionError("oidc_subject: single sign-on is not configured on this hub (set FLIP_OIDC_ISSUER and FLIP_OIDC_AUDIENCE)");
  }
  if (input.password === "" && !oidcSubject) throw new InvalidInputError("password", "required (or give oidc_subject for a single sign-on user)");
  if (input.password !== "") checkPasswordPolicy(input.password, email);
  // Hashed before the transaction opens, so no connection is held while scrypt runs.
  const passwordHash = input.password === "" ? null : await hashPassword(input.password);

  return await em.transactional(async (tx) => {
    const roles = await resolveRoles(tx, input.roles);
    if (await tx.findOne(User, { emailKey: emailKeyOf(email) })) throw new AlreadyExistsError(`a user with email ${email} already exists`);
    if (oidcSubject && (await tx.findOne(User, { oidcIssuer, oidcSubject }))) {
      throw new AlreadyExistsError(`another user is already linked to single sign-on subject "${oidcSubject}"`);
    }
    const user = tx.create(User, {
      email,
      emailKey: emailKeyOf(email),
      name,
      passwordHash,
      totpRequired: input.totpRequired,
      oidcIssuer: oidcSubject ? oidcIssuer : null,
      oidcSubject: oidcSubject || null,
    });
    tx.persist(user);
    // Roles refer to the user by a plain column, so the ORM cannot order the inserts: the user goes first.
    await tx.flush();
    for (const r of roles) tx.persist(tx.create(UserRole, { userId: user.id, role: r.role, trustId: r.trustId, grantedBy: actor }));
    await tx.flush();
    const created = { user, roles: await rolesOf(tx, user.id) };
    await appendAudit(tx, { actor, action: "user.created", target: `user:${user.id}`, after: auditView(created.user, created.roles) });
    return created;
  });
}

async function resolveRoles(em: EntityManager, requests: RoleRequest[]): Promise<ResolvedRole[]> {
  if (requests.length === 0) return [{ role: "viewer", trustId: null }];
  const unique = new Map<string, ResolvedRole>();
  for (const [i, request] of requests.entries()) {
    const r = await resolveRole(em, request, `roles[${i}]`);
    unique.set(`${r.role}/${r.trustId ?? ""}`, r);
  }
  return [...unique.values()];
}

export async function getUser(em: EntityManager, ref: string): Promise<UserWithRoles> {
  const user = await findUser(em, ref);
  return { user, roles: await rolesOf(em, user.id) };
}

export async function listUsers(em: EntityManager, page: Page): Promise<UserWithRoles[]> {
  const users = await em.find(User, {}, { orderBy: { emailKey: "asc" }, offset: page.offset, limit: page.limit });
  const roles = await rolesOfMany(em, users.map((u) => u.id));
  return users.map((user) => ({ user, roles: roles.get(user.id) ?? [] }));
}

/**
 * Disables or re-enables a user; idempotent. Disabling ends every session and revokes every API token
 * (re-enabling does not bring them back), and is refused for the last enabled Admin.
 */
export async function setUserDisabled(em: EntityManager, actor: string, ref: string, disabled: boolean): Promise<UserWithRoles> {
  return await em.transactional(async (tx) => {
    const user = await findUser(tx, ref);
    const roles = await rolesOf(tx, user.id);
    if (Boolean(user.disabledAt) === disabled) return { user, roles };
    if (disabled && roles.some((r) => r.role === "admin")) await assertAnotherAdmin(tx, user);
    const before = auditView(user, roles);
    user.disabledAt = disabled ? new Date() : null;
    await tx.flush();
    const revoked = disabled
      ? { sessions: await revokeUserSessions(tx, user.id, "user disabled"), apiTokens: await revokeUserApiTokens(tx, user.id) }
      : undefined;
    await appendAudit(tx, {
      actor,
      action: disabled ? "user.disabled" : "user.enabled",
      target: `user:${user.id}`,
      before,
      after: { ...auditView(user, roles), ...(revoked ? { revoked } : {}) },
    });
    return { user, roles };
  });
}

/** Clears the user's TOTP enrolment and ends their sessions (e.g. a lost phone). */
export async function resetTotp(em: EntityManager, actor: string, ref: string): Promise<UserWithRoles> {
  return await em.transactional(async (tx) => {
    const user = await findUser(tx, ref);
    const roles = await rolesOf(tx, user.id);
    const before = auditView(user, roles);
    user.totpSecret = null;
    user.totpPendingSecret = null;
    user.totpEnrolledAt = null;
    user.totpLastStep = null;
    await tx.flush();
    const sessions = await revokeUserSessions(tx, user.id, "totp reset");
    await appendAudit(tx, { actor, action: "totp.reset", target: `user:${user.id}`, before, after: { ...auditView(user, roles), revoked: { sessions } } });
    return { user, roles };
  });
}

/** Requires or waives TOTP for a user; idempotent. A required but missing enrolment is enforced on the user's next call. */
export async function setTotpRequired(em: EntityManager, actor: string, ref: string, required: boolean): Promise<UserWithRoles> {
  return await em.transactional(async (tx) => {
    const user = await findUser(tx, ref);
    const roles = await rolesOf(tx, user.id);
    if (user.totpRequired === required) return { user, roles };
    const before = auditView(user, roles);
    user.totpRequired = required;
    await tx.flush();
    await appendAudit(tx, { actor, action: required ? "totp.required" : "totp.waived", target: `user:${user.id}`, before, after: auditView(user, roles) });
    return { user, roles };
  });
}
