import { Role, type User } from "@flip/gen/flip/hub/v1/users_pb.js";

export const isAdmin = (u: User): boolean => u.roles.some((r) => r.role === Role.ADMIN);
export const isResearcher = (u: User): boolean => u.roles.some((r) => r.role === Role.RESEARCHER);
/** Reads every project and job (the role a new account gets when none is given). */
export const isViewer = (u: User): boolean => u.roles.some((r) => r.role === Role.VIEWER);
/** May start a project, as the hub decides it (createProject in services/hub/src/projects/projects.ts). */
export const mayCreateProjects = (u: User): boolean => isAdmin(u) || isResearcher(u);
/** Trusts (as the role names them) whose projects this user decides on. */
export const trustAdminOf = (u: User): string[] => u.roles.filter((r) => r.role === Role.TRUST_ADMIN).map((r) => r.trustId);
export const isTrustAdmin = (u: User): boolean => trustAdminOf(u).length > 0;

const ROLE_LABELS: Record<Role, string> = {
  [Role.UNSPECIFIED]: "no role",
  [Role.ADMIN]: "Admin",
  [Role.RESEARCHER]: "Researcher",
  [Role.VIEWER]: "Viewer",
  [Role.TRUST_ADMIN]: "Trust Admin",
};

export function roleLabel(role: Role, trustId = ""): string {
  return role === Role.TRUST_ADMIN && trustId ? `${ROLE_LABELS[role]} (${trustId})` : ROLE_LABELS[role];
}

/** Where a person lands after signing in: the page for what they most likely came to do. */
export function homePath(u: User): string {
  if (isResearcher(u)) return "/projects";
  if (isTrustAdmin(u)) return "/approvals";
  if (isAdmin(u)) return "/admin/trusts";
  return "/projects";
}
