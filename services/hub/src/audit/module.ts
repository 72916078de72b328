import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import type { HubModule } from "../hub-module.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { registerAuditHandlers } from "./handlers.js";
import { AuditSequencer } from "./sequencer.js";

/** The audit log: AuditService, and the sequencer that chains what every module appends. */
export function auditModule(deps: HubDeps): HubModule {
  const sequencer = new AuditSequencer(deps.db, deps.log);
  return {
    services: [AuditService],
    routes: (router) => registerAuditHandlers(router, deps),
    start: () => sequencer.start(),
    stop: () => sequencer.stop(),
  };
}
