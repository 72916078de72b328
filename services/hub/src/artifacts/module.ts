import { ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { artifactDeps, type ArtifactDeps } from "./deps.js";
import { artifactDirectRoutes } from "./direct-handlers.js";
import { verifyUnsyncedArtifacts } from "./durability.js";
import { registerArtifactHandlers } from "./handlers.js";

/**
 * The artifact domain as a hub module: serves flip.link.v1.ArtifactService (Upload and Download also
 * straight on HTTP/2 for gRPC callers) once the store's directory exists and every complete artifact a
 * crash may have left unsynced was checked.
 */
export function artifactModule(hub: HubDeps): HubModule {
  let deps: ArtifactDeps | undefined;
  const started = () => {
    if (!deps) throw new Error("artifact module routes requested before start()");
    return deps;
  };
  return {
    services: [ArtifactService],
    async start() {
      deps = await artifactDeps(hub);
      // Before the port opens, so no trust downloads bytes a crash damaged.
      await verifyUnsyncedArtifacts(deps);
      hub.log.info({ dir: hub.config.artifactDir, maxBytes: hub.config.artifactMaxBytes }, "artifact store ready");
    },
    routes(router) {
      registerArtifactHandlers(router, started());
    },
    direct() {
      return artifactDirectRoutes(started());
    },
    async stop() {
      // Completed uploads still being synced: their rows record it before the database closes.
      await deps?.syncs.idle();
    },
  };
}
