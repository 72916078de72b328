import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { registerAdminHandlers } from "./handlers.js";

/** Platform administration: the deployment mode and the access-token signing key. */
export function adminModule(deps: HubDeps): HubModule {
  return { services: [AdminService], routes: (router) => registerAdminHandlers(router, deps) };
}
