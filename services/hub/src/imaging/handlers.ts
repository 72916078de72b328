import type { ConnectRouter } from "@connectrpc/connect";
import { ImagingService } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { importImaging } from "./import-imaging.js";
import { getImagingStatus } from "./status.js";
import { trustImagingToProto } from "./to-proto.js";

/** flip.hub.v1.ImagingService: thin handlers over the imaging domain (status.ts, import-imaging.ts). */
export function registerImagingHandlers(router: ConnectRouter, deps: HubDeps): void {
  const { db, log } = deps;
  router.service(ImagingService, {
    getImagingStatus: (req, ctx) =>
      answer(log, ctx, async () => ({ trusts: (await getImagingStatus(db.em(), callerOf(ctx), req.projectId)).map(trustImagingToProto) })),
    importImaging: (req, ctx) =>
      answer(log, ctx, async () => {
        const trusts = await importImaging(db.em(), callerOf(ctx), { projectId: req.projectId, trusts: req.trusts, convertToNifti: req.convertToNifti });
        log.info({ projectId: req.projectId, convertToNifti: req.convertToNifti }, "imaging import requested");
        return { trusts: trusts.map(trustImagingToProto) };
      }),
  });
}
