import type { EntityManager } from "@mikro-orm/postgresql";
import type { Principal } from "../auth/principal.js";
import { visibleProject } from "../projects/access.js";
import { InvalidInputError, NotFoundError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { CohortQuery } from "./entities.js";
import { isUuid } from "../domain/ids.js";


/** A cohort query whose project the caller may see; otherwise not found. */
export async function visibleCohortQuery(em: EntityManager, caller: Principal, queryId: string): Promise<CohortQuery> {
  if (!isUuid(queryId)) throw new InvalidInputError("query_id", "must be a cohort query id (UUID)");
  const query = await em.findOne(CohortQuery, { id: queryId });
  if (!query) throw new NotFoundError("cohort query", queryId);
  try {
    await visibleProject(em, caller, query.projectId);
  } catch (e) {
    if (e instanceof NotFoundError) throw new NotFoundError("cohort query", queryId);
    throw e;
  }
  return query;
}

export async function listProjectCohortQueries(em: EntityManager, caller: Principal, projectId: string, page: Page): Promise<CohortQuery[]> {
  await visibleProject(em, caller, projectId);
  return await em.find(CohortQuery, { projectId }, { orderBy: { createdAt: "desc", id: "asc" }, offset: page.offset, limit: page.limit });
}
