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
  const out: TrustDecisionRow[] = [];
  for (const r of rows) {
    const project = await em.findOneOrFail(Project, { id: r.project_id });
    const decision = await em.findOneOrFail(ProjectTrust, { projectId: r.project_id, trustId: trust.id });
    out.push({ project, decision, cohortCount: Number(r.record_count ?? 0) });
  }
  return out;
}
