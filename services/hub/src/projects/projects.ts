import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { actorOf, isAdmin, type Principal } from "../auth/principal.js";
import { AlreadyExistsError, InvalidInputError, PermissionError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { hasRole, trustAdminTrustIds } from "../identity/role-checks.js";
import { findUser } from "../identity/user-lookup.js";
import { principalId } from "./access.js";
import { Project, ProjectMember } from "./entities.js";

export interface NewProject {
  name: string;
  description: string;
  memberIds: string[];
}

/** The project fields recorded in the audit log. */
export function projectAuditView(p: Project) {
  return { id: p.id, name: p.name, description: p.description, ownerId: p.ownerId, status: p.status, deleted: Boolean(p.deletedAt) };
}

export function validateProjectName(name: string): string {
  const n = name.trim();
  if (n.length < 3 || n.length > 120) throw new InvalidInputError("name", "must be 3 to 120 characters");
  return n;
}

export function validateDescription(d: string): string {
  if (d.length > 4000) throw new InvalidInputError("description", "must be at most 4000 characters");
  return d;
}

/** Creates a project owned by the caller (Researchers and Admins). */
export async function createProject(em: EntityManager, caller: Principal, input: NewProject): Promise<Project> {
  const canCreate = isAdmin(caller) || hasRole(caller, "researcher");
  if (!canCreate) throw new PermissionError("creating a project needs the Researcher or Admin role");
  const name = validateProjectName(input.name);
  const description = validateDescription(input.description);
  return await em.transactional(async (tx) => {
    const [clash] = await tx.execute<{ id: string }[]>("select id from project where lower(name) = lower(?) and deleted_at is null", [name]);
    if (clash) throw new AlreadyExistsError(`a project named "${name}" already exists`);
    const project = tx.create(Project, { name, description, ownerId: principalId(caller), status: "unstaged", latestQueryId: null, deletedAt: null });
    tx.persist(project);
    // Members reference the project row, and the ORM knows no relation between them: insert it first.
    await tx.flush();
    const memberIds = new Set<string>();
    for (const [i, ref] of input.memberIds.entries()) memberIds.add((await findUser(tx, ref, `members[${i}]`)).id);
    for (const userId of memberIds) tx.persist(tx.create(ProjectMember, { projectId: project.id, userId }));
    await tx.flush();
    await appendAudit(tx, { actor: actorOf(caller), action: "project.created", target: `project:${project.id}`, after: { ...projectAuditView(project), members: [...memberIds] } });
    return project;
  });
}

/** Projects the caller may see, newest first. */
export async function listVisibleProjects(em: EntityManager, caller: Principal, page: Page, includeDeleted: boolean): Promise<Project[]> {
  const deleted = includeDeleted && isAdmin(caller) ? "" : "and p.deleted_at is null";
  const seeAll = isAdmin(caller) || hasRole(caller, "viewer");
  const me = principalId(caller);
  const trusts = trustAdminTrustIds(caller);
  const where = seeAll
    ? "true"
    : `(p.owner_id = ? or exists (select 1 from project_member m where m.project_id = p.id and m.user_id = ?)
        or exists (select 1 from project_trust t where t.project_id = p.id and t.trust_id = any(?::uuid[])))`;
  const params = seeAll ? [] : [me, me, `{${trusts.join(",")}}`];
  const rows = await em.execute<{ id: string }[]>(
    `select p.id from project p where ${where} ${deleted} order by p.created_at desc, p.id limit ? offset ?`,
    [...params, page.limit, page.offset],
  );
  if (rows.length === 0) return [];
  const projects = await em.find(Project, { id: { $in: rows.map((r) => r.id) } });
  const order = new Map(rows.map((r, i) => [r.id, i]));
  return projects.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
}
