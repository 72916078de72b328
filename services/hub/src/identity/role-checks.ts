import type { EntityManager } from "@mikro-orm/postgresql";
import type { Principal, RoleGrantRef } from "../auth/principal.js";

/**
 * Role checks for every hub domain. Global roles (admin, researcher, viewer) ignore trusts; trust-admin
 * counts only for the trust it was granted on. Admin deliberately does not imply trust-admin: a hub admin
 * may decide for a trust only when that trust has no Trust Admin of its own (see `mayDecideForTrust`).
 */
export type RoleName = RoleGrantRef["role"];

/** True when the caller holds `role` (for trust-admin: on `trustId`). The bootstrap token counts as admin only. */
export function hasRole(p: Principal, role: RoleName, trustId?: string): boolean {
  if (p.kind === "bootstrap-admin") return role === "admin";
  if (p.kind !== "user") return false;
  if (role === "trust-admin") return trustId !== undefined && p.roles.some((r) => r.role === "trust-admin" && r.trustId === trustId);
  return p.roles.some((r) => r.role === role);
}

/** True when the caller holds any of the global roles. */
export function hasAnyRole(p: Principal, roles: readonly Exclude<RoleName, "trust-admin">[]): boolean {
  return roles.some((r) => hasRole(p, r));
}

/** The trusts the caller is Trust Admin of. */
export function trustAdminTrustIds(p: Principal): string[] {
  return p.kind === "user" ? p.roles.filter((r) => r.role === "trust-admin" && r.trustId).map((r) => r.trustId!) : [];
}

/** True when some enabled user is Trust Admin of the trust. */
export async function trustHasTrustAdmin(em: EntityManager, trustId: string): Promise<boolean> {
  const rows = await em.execute<unknown[]>(
    `select 1 from user_role r join app_user u on u.id = r.user_id
     where r.role = 'trust-admin' and r.trust_id = ? and u.disabled_at is null limit 1`,
    [trustId],
  );
  return rows.length > 0;
}

/**
 * Who may approve or decline a project for a trust: its Trust Admins; a hub Admin only while the trust
 * has no (enabled) Trust Admin.
 */
export async function mayDecideForTrust(em: EntityManager, p: Principal, trustId: string): Promise<boolean> {
  if (hasRole(p, "trust-admin", trustId)) return true;
  return hasRole(p, "admin") && !(await trustHasTrustAdmin(em, trustId));
}
