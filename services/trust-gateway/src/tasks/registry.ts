import type { DataAccessClient } from "@flip/data-access/client.js";
import type { ImagingClient } from "@flip/imaging/client.js";
import { cohortQueryHandler } from "./handlers/cohort-query.js";
import { echoHandler } from "./handlers/echo.js";
import { freezeCohortHandler } from "./handlers/freeze-cohort.js";
import { imagingDeleteHandler, imagingImportHandler } from "./handlers/imaging.js";
import type { TaskHandler, TaskHandlers } from "./task-handler.js";

/**
 * Every task kind this gateway runs. To add a kind, write its handler in `handlers/<kind>.ts` and add
 * one line here; the link, capacity, retries, cancellation and results need no change.
 */
export const defaultTaskHandlers: TaskHandlers = {
  echo: echoHandler,
};

/** The trust's local services the handlers call. Kinds whose service is not configured are not offered. */
export interface TrustServices {
  dataAccess?: DataAccessClient;
  /** The trust's imaging service (PACS imports, research store). */
  imaging?: ImagingClient;
  /** Training workloads on the trust's Docker engine (training/workloads.ts), when the trust runs them. */
  training?: { handler: TaskHandler<"training"> };
}

/** The handlers a trust runs, given which of its local services are configured. */
export function trustTaskHandlers(services: TrustServices): TaskHandlers {
  const handlers: TaskHandlers = { ...defaultTaskHandlers };
  if (services.dataAccess) {
    handlers.cohortQuery = cohortQueryHandler(services.dataAccess);
    handlers.freezeCohort = freezeCohortHandler(services.dataAccess);
  }
  if (services.imaging) {
    handlers.imagingImport = imagingImportHandler(services.imaging);
    handlers.imagingDelete = imagingDeleteHandler(services.imaging);
  }
  if (services.training) handlers.training = services.training.handler;
  return handlers;
}
