import { defineEntity, p } from "@mikro-orm/core";

/**
 * The live link of a trust: which stream on which hub replica holds it. At most one row per trust; a
 * newer stream replaces the row, and tasks offered on a stream that no longer owns the row go back to
 * pending. This row is what keeps two replicas from running the same attempt.
 */
export const TrustLinkSchema = defineEntity({
  name: "TrustLink",
  tableName: "trust_link",
  properties: {
    trustId: p.uuid().primary(),
    streamId: p.uuid().unique(),
    hubInstance: p.string(),
    connectedAt: p.datetime(),
    gatewayVersion: p.string(),
    /** Declared capacity per task kind name, e.g. {"echo": 4}. */
    capacity: p.json<Record<string, number>>(),
  },
});
export class TrustLink extends TrustLinkSchema.class {}
TrustLinkSchema.setClass(TrustLink);
