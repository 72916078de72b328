import type { DataAccessClient } from "@flip/data-access/client.js";
import type { TaskHandler } from "../task-handler.js";
import { failureFromDataAccess } from "./data-access-errors.js";

/** Aggregate statistics for a cohort query, computed and suppressed by the trust's data-access service. */
export function cohortQueryHandler(dataAccess: DataAccessClient): TaskHandler<"cohortQuery"> {
  return async (spec, ctx) => {
    try {
      const { statistics } = await dataAccess.getCohortStatistics(
        { projectId: spec.projectId, queryId: spec.queryId, sql: spec.sql, minCount: spec.minCount, requestedBy: spec.requestedBy },
        { signal: ctx.signal },
      );
      if (!statistics) throw new Error("data-access answered without statistics");
      return statistics;
    } catch (e) {
      ctx.signal.throwIfAborted();
      throw failureFromDataAccess(e);
    }
  };
}
