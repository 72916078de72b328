import { LinkService } from "@flip/gen/flip/link/v1/link_pb.js";
import type { ImagingImportOutput, TrainingReport } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { directLinkRoute } from "./direct-link.js";
import { registerLinkHandlers } from "./handlers.js";
import { LinkRegistry } from "./link-registry.js";

export interface LinkModule extends HubModule {
  /** The links this replica holds (for operators and tests). */
  readonly registry: LinkRegistry;
}

export interface LinkHooks {
  /** Metrics, events and logs a training workload reported, sent live in a training task's progress. */
  trainingReports?: (trustId: string, taskId: string, report: TrainingReport) => Promise<void>;
  /** The counts so far of an imaging import, sent live in the import task's progress. */
  imagingProgress?: (trustId: string, taskId: string, counts: ImagingImportOutput) => Promise<void>;
}

/** The trust link: LinkService.Connect and the sessions it holds. */
export function linkModule(deps: HubDeps, hooks: LinkHooks = {}): LinkModule {
  const registry = new LinkRegistry({ ...deps, trainingReports: hooks.trainingReports, imagingProgress: hooks.imagingProgress });
  deps.metrics.observeLinkedTrusts(() => registry.size);
  return {
    services: [LinkService],
    routes: (router) => registerLinkHandlers(router, { db: deps.db, log: deps.log, registry }),
    direct: () => [directLinkRoute({ db: deps.db, log: deps.log, registry })],
    registry,
    start: () => registry.start(),
    stop: () => registry.stop(),
  };
}
