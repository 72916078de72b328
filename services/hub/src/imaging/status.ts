import type { EntityManager } from "@mikro-orm/postgresql";
import { isAdmin, type Principal } from "../auth/principal.js";
import { visibleProject } from "../projects/access.js";
import { Project } from "../projects/entities.js";
import { NotFoundError } from "../domain/errors.js";
import type { ImagingRow } from "./rows.js";
import { DELETE_KIND } from "./requests.js";

/** One trust a project is staged at, and its imaging row when it has one. */
export interface TrustImaging {
  trustId: string;
  trustCode: string;
  row: ImagingRow | undefined;
  /** Whether the trust's gateway, linked now, runs deletions; undefined while it is offline. */
  linkedGatewayDeletes: boolean | undefined;
}

/** Every trust the project is staged at, by code, with its imaging (the project's visibility is the caller's concern). */
export async function imagingOf(em: EntityManager, projectId: string): Promise<TrustImaging[]> {
  const rows = await em.execute<(Partial<ImagingRow> & { staged_trust_id: string; code: string; linked: boolean; deletes: boolean | null })[]>(
    `select pt.trust_id as staged_trust_id, tr.code, p.*, l.trust_id is not null as linked, (l.capacity -> ?) is not null as deletes
     from project_trust pt
     join trust tr on tr.id = pt.trust_id
     left join project_imaging p on p.project_id = pt.project_id and p.trust_id = pt.trust_id
     left join trust_link l on l.trust_id = pt.trust_id
     where pt.project_id = ?
     order by tr.code`,
    [DELETE_KIND, projectId],
  );
  return rows.map((r) => ({
    trustId: r.staged_trust_id,
    trustCode: r.code,
    row: r.state ? (r as ImagingRow) : undefined,
    linkedGatewayDeletes: r.linked ? Boolean(r.deletes) : undefined,
  }));
}

/**
 * GetImagingStatus: whoever may see the project sees each trust's counts. An Admin also sees a deleted
 * project's, to follow the deletion of its research copies at the trusts.
 */
export async function getImagingStatus(em: EntityManager, caller: Principal, projectId: string): Promise<TrustImaging[]> {
  try {
    await visibleProject(em, caller, projectId);
  } catch (e) {
    if (!(e instanceof NotFoundError && isAdmin(caller) && (await em.count(Project, { id: projectId })) > 0)) throw e;
  }
  return await imagingOf(em, projectId);
}
