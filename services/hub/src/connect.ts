import type { ConnectRouter } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { hubServices } from "./auth/policies.js";
import type { HubModule } from "./hub-module.js";

/**
 * All hub routes: each module registers the services it implements; every other hub service is
 * registered empty, so its RPCs answer Unimplemented rather than 404.
 */
export function hubRoutes(modules: HubModule[]): (router: ConnectRouter) => void {
  return (router) => {
    const served = new Set<DescService>();
    for (const m of modules) {
      m.routes(router);
      for (const s of m.services) served.add(s);
    }
    for (const s of hubServices) if (!served.has(s)) router.service(s, {});
  };
}
