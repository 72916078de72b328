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
    /** The gateway process as it named itself ("host/pid N/nonce"); "" for a gateway that did not. */
    gateway: p.string(),
    /** Other gateway processes of the trust refused while this link was live, and the latest of them. */
    refusedAttempts: p.integer(),
    lastRefusedGateway: p.string().nullable(),
    lastRefusedAt: p.datetime().nullable(),
    /** Declared capacity per task kind name, e.g. {"echo": 4}. */
    capacity: p.json<Record<string, number>>(),
  },
});
export class TrustLink extends TrustLinkSchema.class {}
TrustLinkSchema.setClass(TrustLink);
