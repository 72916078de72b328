import type { EntityManager } from "@mikro-orm/postgresql";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import { User, UserRole } from "./entities.js";

export interface UserWithRoles {
  user: User;
  roles: UserRole[];
}


import { isUuid } from "../domain/ids.js";

export { isUuid };

/** The key that makes emails unique and finds accounts: trimmed and lower-cased. */
export function emailKeyOf(email: string): string {
  return email.trim().toLowerCase();
}

/** Finds a user by id or email (any case). */
export async function findUser(em: EntityManager, ref: string, field = "user"): Promise<User> {
  const r = ref.trim();
  if (r === "") throw new InvalidInputError(field, "give a user id or email");
  const user = isUuid(r) ? await em.findOne(User, { id: r }) : await em.findOne(User, { emailKey: emailKeyOf(r) });
  if (!user) throw new NotFoundError("user", r);
  return user;
}

/** The roles of one user, in a stable order. */
export async function rolesOf(em: EntityManager, userId: string): Promise<UserRole[]> {
  return await em.find(UserRole, { userId }, { orderBy: { role: "asc", trustId: "asc" } });
}

/** The roles of many users at once (one query, for lists). */
export async function rolesOfMany(em: EntityManager, userIds: string[]): Promise<Map<string, UserRole[]>> {
  const byUser = new Map<string, UserRole[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return byUser;
  for (const r of await em.find(UserRole, { userId: { $in: userIds } }, { orderBy: { role: "asc", trustId: "asc" } })) byUser.get(r.userId)?.push(r);
  return byUser;
}

/** What the audit log records about a user: never a password hash or TOTP secret. */
export function auditView(user: User, roles: UserRole[]) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    roles: roles.map((r) => (r.trustId ? { role: r.role, trustId: r.trustId } : { role: r.role })),
    disabled: Boolean(user.disabledAt),
    totpEnrolled: Boolean(user.totpSecret),
    totpRequired: user.totpRequired,
    oidcSubject: user.oidcSubject ?? null,
  };
}
