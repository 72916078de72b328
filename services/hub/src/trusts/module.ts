import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { registerTrustHandlers } from "./handlers.js";

/** The trusts the hub knows: registration, keys, and whether each is linked now. */
export function trustModule(deps: HubDeps): HubModule {
  return { services: [TrustService], routes: (router) => registerTrustHandlers(router, deps) };
}
