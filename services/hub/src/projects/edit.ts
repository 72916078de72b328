import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { actorOf, type Principal } from "../auth/principal.js";
import { findUser } from "../identity/user-lookup.js";
import { requestImagingDeletes } from "../imaging/requests.js";
import { jobChanged } from "../training/events.js";
import { abortLiveJobs } from "../training/jobs.js";
import { ConcurrentChangeError, FailedPreconditionError, NotFoundError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import { lockProject, modifiableProject } from "./access.js";
import { Project, ProjectMember } from "./entities.js";
import { projectAuditView, validateDescription, validateProjectName } from "./projects.js";

/** Edits name and description of an UNSTAGED project, with an optional optimistic version check. */
export async function updateProject(
  em: EntityManager,
  caller: Principal,
  projectId: string,
  change: { name: string; description: string; expectedVersion: number },
): Promise<Project> {
  return await em.transactional(async (tx) => {
    await modifiableProject(tx, caller, projectId);
    const project = await lockProject(tx, projectId);
    if (change.expectedVersion !== 0 && change.expectedVersion !== project.version) {
      throw new ConcurrentChangeError(`the project is at version ${project.version}, not ${change.expectedVersion}`);
    }
    if (project.status !== "unstaged") throw new FailedPreconditionError(`a ${project.status} project is read-only; unstage it to edit`);
    const before = projectAuditView(project);
    const name = change.name === "" ? project.name : validateProjectName(change.name);
    if (name.toLowerCase() !== project.name.toLowerCase()) {
      const [clash] = await tx.execute<{ id: string }[]>("select id from project where lower(name) = lower(?) and deleted_at is null and id <> ?", [name, projectId]);
      if (clash) throw new FailedPreconditionError(`a project named "${name}" already exists`);
    }
    project.name = name;
    project.description = validateDescription(change.description);
    await tx.flush();
    await appendAudit(tx, { actor: actorOf(caller), action: "project.edited", target: `project:${projectId}`, before, after: projectAuditView(project) });
    return project;
  });
}

/**
 * Soft-deletes a project at any state; idempotent. In the same transaction its live training jobs are
 * aborted (their trusts told to stop) and every trust that imported its images is asked to delete their
 * research copies.
 */
export async function deleteProject(em: EntityManager, caller: Principal, projectId: string): Promise<void> {
  await em.transactional(async (tx) => {
    // An id that is not a UUID (even an empty one) is refused by modifiableProject, not sent to PostgreSQL.
    const project = isUuid(projectId) ? await tx.findOne(Project, { id: projectId }) : null;
    if (project?.deletedAt) return;
    await modifiableProject(tx, caller, projectId);
    const locked = await lockProject(tx, projectId);
    if (locked.deletedAt) return;
    const before = projectAuditView(locked);
    locked.deletedAt = new Date();
    await tx.flush();
    await appendAudit(tx, { actor: actorOf(caller), action: "project.deleted", target: `project:${projectId}`, before, after: projectAuditView(locked) });
    const aborted = await abortLiveJobs(tx, { projectId }, `project "${locked.name}" was deleted by ${actorOf(caller)}`, actorOf(caller));
    await requestImagingDeletes(tx, projectId, "all", "project deleted", actorOf(caller));
    for (const id of aborted) await jobChanged(tx, id);
  });
}

/** Adds or removes a member (by user id or email); idempotent. */
export async function setProjectMember(em: EntityManager, caller: Principal, projectId: string, userRef: string, member: boolean): Promise<Project> {
  return await em.transactional(async (tx) => {
    const project = await modifiableProject(tx, caller, projectId);
    let userId: string;
    try {
      userId = (await findUser(tx, userRef)).id;
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError("user", userRef);
      throw e;
    }
    const existing = await tx.findOne(ProjectMember, { projectId, userId });
    if (member === Boolean(existing)) return project;
    if (member) tx.persist(tx.create(ProjectMember, { projectId, userId }));
    else tx.remove(existing!);
    await tx.flush();
    await appendAudit(tx, { actor: actorOf(caller), action: member ? "project.member_added" : "project.member_removed", target: `project:${projectId}`, after: { userId } });
    return project;
  });
}
