import { defineEntity, p } from "@mikro-orm/core";

/**
 * A large payload (model weights, results, bundles) kept outside the trust link's control stream.
 * Trusts upload theirs with a client-chosen id; hub-produced artifacts (e.g. aggregated weights) have no
 * owner trust and reach trusts only through `ArtifactAccess` grants.
 *
 * `storedBytes` is the durable offset: it only advances after the stored bytes were fsynced, so an upload
 * that resumes from it never builds on bytes a crash could have lost. `uploadSession` fences a stale
 * upload stream (e.g. a half-open connection on another replica) out of writing offsets once a newer
 * stream of the same artifact has begun.
 */
export const ArtifactSchema = defineEntity({
  name: "Artifact",
  tableName: "artifact",
  properties: {
    id: p.uuid().primary(),
    /** The trust that uploaded it; null for artifacts the hub wrote itself. */
    ownerTrustId: p.uuid().nullable(),
    purpose: p.string(),
    taskId: p.string().nullable(),
    sizeBytes: p.bigint("number"),
    /** Lower-case hex SHA-256 of the whole artifact, as declared by the writer and verified at the end. */
    sha256: p.string(),
    storedBytes: p.bigint("number"),
    complete: p.boolean(),
    uploadSession: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    completedAt: p.datetime().nullable(),
  },
});
export class Artifact extends ArtifactSchema.class {}
ArtifactSchema.setClass(Artifact);

/** A trust other than the owner may download the artifact (e.g. global weights sent to every trust of a job). */
export const ArtifactAccessSchema = defineEntity({
  name: "ArtifactAccess",
  tableName: "artifact_access",
  properties: {
    artifactId: p.uuid().primary(),
    trustId: p.uuid().primary(),
    grantedAt: p.datetime().onCreate(() => new Date()),
    grantedBy: p.string(),
  },
  primaryKeys: ["artifactId", "trustId"],
});
export class ArtifactAccess extends ArtifactAccessSchema.class {}
ArtifactAccessSchema.setClass(ArtifactAccess);
