import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { FailedPreconditionError, InvalidInputError } from "../domain/errors.js";
import { findTrust } from "../trusts/registry.js";
import { ROLE_NAMES, User, UserRole, type RoleName } from "./entities.js";
import { auditView, findUser, rolesOf, type UserWithRoles } from "./user-lookup.js";

/** A role as a caller names it: the trust by id or code, for trust-admin only. */
export interface RoleRequest {
  role: RoleName | undefined;
  trust: string;
}

export interface ResolvedRole {
  role: RoleName;
  trustId: string | null;
}

/** Arbitrary constant: the advisory lock taken by every change that could leave the hub without an Admin. */
const ADMIN_GUARD_LOCK = 7_770_101;

/** Validates a role request; a trust-admin role needs an existing trust, the others must not name one. */
export async function resolveRole(em: EntityManager, r: RoleRequest, field: string): Promise<ResolvedRole> {
  if (r.role === undefined || !ROLE_NAMES.includes(r.role)) throw new InvalidInputError(`${field}.role`, "give one of ADMIN, RESEARCHER, VIEWER, TRUST_ADMIN");
  if (r.role !== "trust-admin") {
    if (r.trust !== "") throw new InvalidInputError(`${field}.trust_id`, `only TRUST_ADMIN is scoped to a trust; leave it empty for ${r.role}`);
    return { role: r.role, trustId: null };
  }
  if (r.trust === "") throw new InvalidInputError(`${field}.trust_id`, "TRUST_ADMIN needs the trust (id or code) it applies to");
  const trust = await findTrust(em, r.trust, `${field}.trust_id`);
  return { role: "trust-admin", trustId: trust.id };
}

/** Grants a role; idempotent (granting a role the user holds changes nothing and writes no audit entry). */
export async function grantRole(em: EntityManager, actor: string, userRef: string, request: RoleRequest): Promise<UserWithRoles> {
  return await em.transactional(async (tx) => {
    const user = await findUser(tx, userRef);
    const r = await resolveRole(tx, request, "grant");
    const held = await tx.findOne(UserRole, { userId: user.id, role: r.role, trustId: r.trustId });
    if (!held) {
      const before = auditView(user, await rolesOf(tx, user.id));
      tx.persist(tx.create(UserRole, { userId: user.id, role: r.role, trustId: r.trustId, grantedBy: actor }));
      await tx.flush();
      await appendAudit(tx, { actor, action: "role.granted", target: `user:${user.id}`, before, after: { ...auditView(user, await rolesOf(tx, user.id)), granted: r } });
    }
    return { user, roles: await rolesOf(tx, user.id) };
  });
}

/** Revokes a role; idempotent. Refuses to remove the last enabled Admin. */
export async function revokeRole(em: EntityManager, actor: string, userRef: string, request: RoleRequest): Promise<UserWithRoles> {
  return await em.transactional(async (tx) => {
    const user = await findUser(tx, userRef);
    const r = await resolveRole(tx, request, "grant");
    const held = await tx.findOne(UserRole, { userId: user.id, role: r.role, trustId: r.trustId });
    if (held) {
      if (r.role === "admin" && !user.disabledAt) await assertAnotherAdmin(tx, user);
      const before = auditView(user, await rolesOf(tx, user.id));
      tx.remove(held);
      await tx.flush();
      await appendAudit(tx, { actor, action: "role.revoked", target: `user:${user.id}`, before, after: { ...auditView(user, await rolesOf(tx, user.id)), revoked: r } });
    }
    return { user, roles: await rolesOf(tx, user.id) };
  });
}

/**
 * Throws unless an enabled Admin other than `user` exists. Takes a transaction-scoped lock first, so two
 * admins removing each other at the same moment cannot both succeed.
 */
export async function assertAnotherAdmin(tx: EntityManager, user: User): Promise<void> {
  await tx.execute("select pg_advisory_xact_lock(?)", [ADMIN_GUARD_LOCK]);
  const [row] = await tx.execute<{ n: string }[]>(
    `select count(*) as n from user_role r join app_user u on u.id = r.user_id
     where r.role = 'admin' and u.disabled_at is null and u.id <> ?`,
    [user.id],
  );
  if (Number(row!.n) === 0) {
    throw new FailedPreconditionError(`${user.email} is the last enabled Admin; grant Admin to another user first`);
  }
}

/** True when at least one enabled user holds Admin (from then on the bootstrap token is refused). */
export async function enabledAdminExists(em: EntityManager): Promise<boolean> {
  const rows = await em.execute<unknown[]>(
    "select 1 from user_role r join app_user u on u.id = r.user_id where r.role = 'admin' and u.disabled_at is null limit 1",
  );
  return rows.length > 0;
}
