import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LinkStatus, TrustSchema as TrustMessageSchema, type Trust as TrustMessage } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import type { TrustLink } from "../link/entities.js";
import type { Trust } from "./entities.js";
import { healthFromJson } from "./health-json.js";

/** Online when a heartbeat arrived within `offlineAfterMs`. */
export function linkStatusOf(t: Pick<Trust, "lastSeenAt">, offlineAfterMs: number, now = Date.now()): LinkStatus {
  if (!t.lastSeenAt) return LinkStatus.NEVER_CONNECTED;
  return now - t.lastSeenAt.getTime() <= offlineAfterMs ? LinkStatus.ONLINE : LinkStatus.OFFLINE;
}

/** `link`: the trust's current link row, for GetTrust (lists leave it out). */
export function trustToProto(t: Trust, offlineAfterMs: number, link?: TrustLink | null): TrustMessage {
  return create(TrustMessageSchema, {
    id: t.id,
    name: t.name,
    code: t.code,
    region: t.region,
    disabled: Boolean(t.disabledAt),
    linkStatus: linkStatusOf(t, offlineAfterMs),
    lastSeenAt: t.lastSeenAt ? timestampFromDate(t.lastSeenAt) : undefined,
    createdAt: timestampFromDate(t.createdAt),
    disabledAt: t.disabledAt ? timestampFromDate(t.disabledAt) : undefined,
    keyId: t.keyId,
    health: healthFromJson(t.health),
    link: link
      ? {
          hubInstance: link.hubInstance,
          connectedAt: timestampFromDate(link.connectedAt),
          gatewayVersion: link.gatewayVersion,
          gateway: link.gateway,
          refusedAttempts: link.refusedAttempts,
          lastRefusedGateway: link.lastRefusedGateway ?? "",
          lastRefusedAt: link.lastRefusedAt ? timestampFromDate(link.lastRefusedAt) : undefined,
        }
      : undefined,
  });
}
