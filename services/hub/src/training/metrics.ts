import type { EntityManager } from "@mikro-orm/postgresql";
import type { Page } from "../domain/paging.js";
import type { MetricRow } from "./to-proto.js";

export interface MetricFilter {
  /** "" for every label. */
  label: string;
  /** A trust's code or id; "" for every trust. */
  trust: string;
  /** 0 for every round. */
  round: number;
}

/** A page of a job's metrics, oldest first, with the code of the trust that reported each. */
export async function listJobMetrics(em: EntityManager, jobId: string, filter: MetricFilter, page: Page): Promise<(MetricRow & { code: string })[]> {
  return await em.execute<(MetricRow & { code: string })[]>(
    `select m.*, t.code from job_metric m join trust t on t.id = m.trust_id
     where m.job_id = ? and (? = '' or m.label = ?) and (? = '' or t.code = ? or m.trust_id::text = ?) and (? = 0 or m.round = ?)
     order by m.id offset ? limit ?`,
    [jobId, filter.label, filter.label, filter.trust, filter.trust, filter.trust, filter.round, filter.round, page.offset, page.limit],
  );
}
