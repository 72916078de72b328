import type { EntityManager } from "@mikro-orm/postgresql";
import { isAdmin, type Principal } from "../auth/principal.js";
import { hasRole } from "../identity/role-checks.js";
import { PermissionError } from "../domain/errors.js";
import { findTrust } from "../trusts/registry.js";
import { Project, ProjectTrust } from "./entities.js";

export interface TrustDecisionRow {
  project: Project;
  decision: ProjectTrust;
  /** The trust's count for the project's latest query (0 when not OK). */
  cohortCount: number;
}

/** Projects staged at a trust with that trust's decision, pending first: the trust governance officer's inbox. */
export async function listTrustDecisions(em: EntityManager, caller: Principal, trustRef: string): Promise<TrustDecisionRow[]> {
  const trust = await findTrust(em, trustRef);
  if (!isAdmin(caller) && !hasRole(caller, "trust-admin", trust.id)) {
    throw new PermissionError(`only a Trust Admin of "${trust.code}" or an Admin can see its decisions`);
  }
  const rows = await em.execute<{ project_id: string; record_count: string | null }[]>(
    `select pt.project_id, a.record_count from project_trust pt
       join project p on p.id = pt.project_id and p.deleted_at is null
       left join cohort_answer a on a.query_id = p.latest_query_id and a.trust_id = pt.trust_id and a.state = 'ok'
     where pt.trust_id = ?
     order by (pt.state = 'pending') desc, pt.staged_at desc`,
    [trust.id],
  );
  if (rows.length === 0) return [];
  const projectIds = rows.map((r) => r.project_id);
  const [projects, decisions] = await Promise.all([
    em.find(Project, { id: { $in: projectIds } }),
    em.find(ProjectTrust, { projectId: { $in: projectIds }, trustId: trust.id }),
  ]);
  const projectOf = new Map(projects.map((p) => [p.id, p]));
  const decisionOf = new Map(decisions.map((d) => [d.projectId, d]));
  // A project unstaged between the queries has lost its decision row: it is no longer staged here, so it is left out.
  return rows.flatMap((r) => {
    const project = projectOf.get(r.project_id);
    const decision = decisionOf.get(r.project_id);
    return project && decision ? [{ project, decision, cohortCount: Number(r.record_count ?? 0) }] : [];
  });
}
