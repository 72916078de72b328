import { defineEntity, p } from "@mikro-orm/core";

/**
 * A large payload (model weights, results, bundles) kept outside the trust link's control stream.
 * Trusts upload theirs with a client-chosen id; hub-produced artifacts (e.g. aggregated weights) have no
 * owner trust and reach trusts only through `ArtifactAccess` grants.
 *
 * `storedBytes` is where an upload resumes: bytes up to it were written to the store (not necessarily
 * synced), and it is recorded in batches and whenever a stream ends or breaks. Integrity does not rest
 * on fsync: a resumed upload re-hashes the stored prefix, and the SHA-256 checked at the end catches any
 * bytes a crash damaged (DATA_LOSS, and the upload starts over from 0). A complete artifact is synced to
 * disk after it was answered complete; `syncedAt` records that, and the hub re-verifies at start any
 * complete artifact that was never synced (see `durability.ts`). `uploadSession` fences a stale upload
 * stream (e.g. a half-open connection on another replica) out of writing offsets once a newer stream of
 * the same artifact has begun.
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
    /**
     * Lower-case hex SHA-256 of the whole artifact, as declared by the writer and verified at the end;
     * null while an upload that sends it only in its `finish` message is incomplete.
     */
    sha256: p.string().nullable(),
    storedBytes: p.bigint("number"),
    complete: p.boolean(),
    uploadSession: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    completedAt: p.datetime().nullable(),
    /** When the complete artifact's bytes were known to be on disk; null until then. */
    syncedAt: p.datetime().nullable(),
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
