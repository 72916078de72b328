import { defineEntity, p } from "@mikro-orm/core";
import type { HealthSnapshotJson } from "./health-json.js";

/** A registered trust. Its API key is `flip_trust_<keyId>_<secret>`; only SHA-256(secret) is stored. */
export const TrustSchema = defineEntity({
  name: "Trust",
  tableName: "trust",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    name: p.string().unique(),
    code: p.string().unique(),
    region: p.string(),
    keyId: p.string().unique(),
    keyHash: p.string(),
    createdAt: p.datetime().onCreate(() => new Date()),
    disabledAt: p.datetime().nullable(),
    lastSeenAt: p.datetime().nullable(),
    health: p.json<HealthSnapshotJson>().nullable(),
    version: p.integer().version(),
  },
});
export class Trust extends TrustSchema.class {}
TrustSchema.setClass(Trust);
