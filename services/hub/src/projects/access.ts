import type { EntityManager } from "@mikro-orm/postgresql";
import { isAdmin, type Principal } from "../auth/principal.js";
import { hasRole, trustAdminTrustIds } from "../identity/role-checks.js";
import { InvalidInputError, NotFoundError, PermissionError } from "../domain/errors.js";
import { Project, ProjectMember, ProjectTrust } from "./entities.js";
import { isUuid } from "../domain/ids.js";


/** The id a principal is known by as a project owner or member. */
export function principalId(p: Principal): string {
  switch (p.kind) {
    case "user":
      return p.userId;
    case "bootstrap-admin":
      return "bootstrap-admin";
    case "anonymous":
      return "anonymous";
  }
}


/**
 * Who sees a project: Admin, Viewers (read-only, platform-wide), the owner, members, and Trust Admins
 * of a trust the project is staged at.
 */
export async function canSeeProject(em: EntityManager, p: Principal, project: Project): Promise<boolean> {
  if (isAdmin(p) || hasRole(p, "viewer")) return true;
  const me = principalId(p);
  if (project.ownerId === me) return true;
  if (await em.count(ProjectMember, { projectId: project.id, userId: me })) return true;
  const trusts = trustAdminTrustIds(p);
  return trusts.length > 0 && (await em.count(ProjectTrust, { projectId: project.id, trustId: { $in: trusts } })) > 0;
}

/** Who may change a project (edit, stage, submit queries, manage members): its owner and Admin. */
export function canModifyProject(p: Principal, project: Project): boolean {
  return isAdmin(p) || project.ownerId === principalId(p);
}

/**
 * Loads a live project the caller may see. A project the caller may not see is reported as not found,
 * so its existence does not leak.
 */
export async function visibleProject(em: EntityManager, p: Principal, projectId: string, field = "project_id"): Promise<Project> {
  if (!isUuid(projectId)) throw new InvalidInputError(field, "must be a project id (UUID)");
  const project = await em.findOne(Project, { id: projectId, deletedAt: null });
  if (!project || !(await canSeeProject(em, p, project))) throw new NotFoundError("project", projectId);
  return project;
}

/** Locks the project row for the rest of the transaction (serialising changes to it) and reloads it. */
export async function lockProject(tx: EntityManager, projectId: string): Promise<Project> {
  await tx.execute("select id from project where id = ? for update", [projectId]);
  return await tx.findOneOrFail(Project, { id: projectId }, { refresh: true });
}

/** Loads a live project the caller may modify: not found if invisible, permission denied if only visible. */
export async function modifiableProject(em: EntityManager, p: Principal, projectId: string, field = "project_id"): Promise<Project> {
  const project = await visibleProject(em, p, projectId, field);
  if (!canModifyProject(p, project)) throw new PermissionError("only the project's owner or an Admin may change it");
  return project;
}
