import type { DataAccessClient } from "@flip/data-access/client.js";
import type { TaskHandler } from "../task-handler.js";
import { failureFromDataAccess } from "./data-access-errors.js";

/** Freezes an approved project's cohort at the trust; only its counts go back to the hub. */
export function freezeCohortHandler(dataAccess: DataAccessClient): TaskHandler<"freezeCohort"> {
  return async (spec, ctx) => {
    try {
      const { cohort } = await dataAccess.freezeCohort(
        { projectId: spec.projectId, queryId: spec.queryId, sql: spec.sql, minCount: spec.minCount },
        { signal: ctx.signal },
      );
      if (!cohort) throw new Error("data-access answered without a cohort");
      return cohort;
    } catch (e) {
      ctx.signal.throwIfAborted();
      throw failureFromDataAccess(e);
    }
  };
}
