import type { ConnectRouter } from "@connectrpc/connect";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindNames, taskKindName } from "@flip/shared/link/task-kinds.js";
import { actorFor, answer, callerOf, type HubDeps } from "../rpc/hub-context.js";
import { InvalidInputError } from "../domain/errors.js";
import { nextPageToken, readPage } from "../domain/paging.js";
import { listTrustActivity } from "./activity.js";
import { trustActivityToProto } from "./activity-to-proto.js";
import { findTrust, listTrusts, registerTrust, rotateTrustKey, setTrustDisabled } from "./registry.js";
import { TrustLink } from "../link/entities.js";
import { trustToProto } from "./to-proto.js";

/** flip.hub.v1.TrustService: thin handlers over the trust registry (registry.ts). */
export function registerTrustHandlers(router: ConnectRouter, { db, config, log }: HubDeps): void {
  const view = (t: Parameters<typeof trustToProto>[0]) => trustToProto(t, config.offlineAfterMs);
  router.service(TrustService, {
    registerTrust: (req, ctx) =>
      answer(log, ctx, async () => {
        const { trust, apiKey } = await registerTrust(db.em(), actorFor(ctx), { name: req.name, code: req.code, region: req.region });
        log.info({ trustId: trust.id, code: trust.code }, "trust registered");
        return { trust: view(trust), apiKey };
      }),
    listTrusts: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const trusts = await listTrusts(db.em(), page, req.includeDisabled);
        return { trusts: trusts.map(view), page: { nextPageToken: nextPageToken(page, trusts.length) } };
      }),
    getTrust: (req, ctx) =>
      answer(log, ctx, async () => {
        const em = db.em();
        const trust = await findTrust(em, req.trust);
        return { trust: trustToProto(trust, config.offlineAfterMs, await em.findOne(TrustLink, { trustId: trust.id })) };
      }),
    rotateTrustKey: (req, ctx) =>
      answer(log, ctx, async () => {
        const { trust, apiKey } = await rotateTrustKey(db.em(), actorFor(ctx), req.trust);
        log.info({ trustId: trust.id, keyId: trust.keyId }, "trust key rotated");
        return { trust: view(trust), apiKey };
      }),
    disableTrust: (req, ctx) =>
      answer(log, ctx, async () => ({ trust: view(await setTrustDisabled(db.em(), actorFor(ctx), req.trust, true, req.reason)) })),
    enableTrust: (req, ctx) => answer(log, ctx, async () => ({ trust: view(await setTrustDisabled(db.em(), actorFor(ctx), req.trust, false)) })),
    listTrustActivity: (req, ctx) =>
      answer(log, ctx, async () => {
        const page = readPage(req.page);
        const kinds = req.kinds.map((k, i) => {
          const name = taskKindName(k);
          if (k === TaskKind.UNSPECIFIED || !taskKindNames.includes(name)) throw new InvalidInputError(`kinds[${i}]`, "must be a task kind other than UNSPECIFIED");
          return name;
        });
        const activity = await listTrustActivity(db.em(), callerOf(ctx), req.trust, kinds, page);
        return { entries: trustActivityToProto(activity), page: { nextPageToken: nextPageToken(page, activity.rows.length) } };
      }),
  });
}
