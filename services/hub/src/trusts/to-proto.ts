import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { LinkStatus, TrustSchema as TrustMessageSchema, type Trust as TrustMessage } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import type { Trust } from "./entities.js";
import { healthFromJson } from "./health-json.js";

/** Online when a heartbeat arrived within `offlineAfterMs`. */
export function linkStatusOf(t: Trust, offlineAfterMs: number, now = Date.now()): LinkStatus {
  if (!t.lastSeenAt) return LinkStatus.NEVER_CONNECTED;
  return now - t.lastSeenAt.getTime() <= offlineAfterMs ? LinkStatus.ONLINE : LinkStatus.OFFLINE;
}

export function trustToProto(t: Trust, offlineAfterMs: number): TrustMessage {
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
  });
}
