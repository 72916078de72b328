import type { ConnectRouter } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { actorFor, answer, type HubDeps } from "../rpc/hub-context.js";
import { rotateSigningKey } from "../identity/signing-key.js";
import { getDeploymentMode, setDeploymentMode } from "./deployment-mode.js";

/** flip.hub.v1.AdminService: thin handlers over deployment-mode.ts and the signing key. */
export function registerAdminHandlers(router: ConnectRouter, { db, log }: HubDeps): void {
  router.service(AdminService, {
    getDeploymentMode: (_req, ctx) =>
      answer(log, ctx, async () => {
        const m = await getDeploymentMode(db.em());
        return { enabled: m.enabled, safeToRedeploy: m.safeToRedeploy, runningTasks: m.runningTasks, runningJobs: m.runningJobs, changedAt: timestampFromDate(m.changedAt), changedBy: m.changedBy };
      }),
    setDeploymentMode: (req, ctx) =>
      answer(log, ctx, async () => {
        const m = await setDeploymentMode(db.em(), actorFor(ctx), req.enabled);
        log.warn({ enabled: m.enabled }, "deployment mode changed");
        return { enabled: m.enabled, safeToRedeploy: m.safeToRedeploy };
      }),
    rotateSigningKey: (req, ctx) =>
      answer(log, ctx, async () => {
        // Every replica, this one included, logs the rotation when it reloads the keys (SigningKeyRing).
        const keys = await rotateSigningKey(db.em(), actorFor(ctx), req.revokePrevious);
        return { keyId: keys.current.kid, previousKeyId: keys.previous?.kid ?? "" };
      }),
  });
}
