import { ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { artifactDeps, type ArtifactDeps } from "./deps.js";
import { registerArtifactHandlers } from "./handlers.js";

/** The artifact domain as a hub module: serves flip.link.v1.ArtifactService once the store's directory exists. */
export function artifactModule(hub: HubDeps): HubModule {
  let deps: ArtifactDeps | undefined;
  return {
    services: [ArtifactService],
    async start() {
      deps = await artifactDeps(hub);
      hub.log.info({ dir: hub.config.artifactDir, maxBytes: hub.config.artifactMaxBytes }, "artifact store ready");
    },
    routes(router) {
      if (!deps) throw new Error("artifact module routes requested before start()");
      registerArtifactHandlers(router, deps);
    },
  };
}
