import type { FilterQuery } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { Page } from "../domain/paging.js";
import { AuditEntry } from "./entities.js";
import { chainAppendedEntries } from "./sequencer.js";

export interface AuditFilter {
  /** Actions starting with this, e.g. "project." */
  actionPrefix?: string;
  target?: string;
  actor?: string;
  /** Only entries with a seq below this. */
  beforeSeq?: bigint;
  newestFirst?: boolean;
}

/**
 * Chained entries in chain order (or newest first). Whatever was appended before the call is chained first, so a caller
 * reads its own writes; an entry committed during the call may be left for the next page or call, which
 * keeps offset paging stable (new entries only ever join at the end of the chain).
 */
export async function listAuditEntries(em: EntityManager, filter: AuditFilter, page: Page): Promise<AuditEntry[]> {
  await chainAppendedEntries(em);
  const where: FilterQuery<AuditEntry> = { seq: filter.beforeSeq ? { $ne: null, $lt: Number(filter.beforeSeq) } : { $ne: null } };
  if (filter.actionPrefix) where.action = { $like: `${filter.actionPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%` };
  if (filter.target) where.target = filter.target;
  if (filter.actor) where.actor = filter.actor;
  return await em.find(AuditEntry, where, { orderBy: { seq: filter.newestFirst ? "desc" : "asc" }, offset: page.offset, limit: page.limit });
}
