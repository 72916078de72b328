import { createHash, randomUUID } from "node:crypto";
import { appendAudit } from "../audit/chain.js";
import { NotFoundError } from "../domain/errors.js";
import { Trust } from "../trusts/entities.js";
import type { ArtifactDeps } from "./deps.js";
import { readComplete, type ArtifactReader } from "./download.js";
import { Artifact, ArtifactAccess } from "./entities.js";
import { ArtifactTooLargeError } from "./errors.js";
import { validatePurpose } from "./validate.js";

export interface NewHubArtifact {
  /** What it is, e.g. "global-weights". */
  purpose: string;
  taskId?: string;
  /** Who writes it, for the audit log (e.g. "system"). */
  actor: string;
  /** The bytes, streamed: memory stays bounded by the caller's chunks, not by the artifact. */
  data: AsyncIterable<Uint8Array>;
  /** Trusts that may download it. */
  shareWith?: string[];
}

/**
 * Stores an artifact the hub produced (e.g. aggregated weights) so trusts can download it: streams the
 * bytes to the store, hashes them on the way, and records the artifact complete with its grants in one
 * transaction. The hub owns it (no owner trust), so only the trusts in `shareWith` (or granted later with
 * `grantArtifactAccess`) see it.
 */
export async function writeHubArtifact(deps: Pick<ArtifactDeps, "db" | "store" | "log" | "maxBytes">, input: NewHubArtifact): Promise<Artifact> {
  validatePurpose(input.purpose, "purpose");
  const id = randomUUID();
  const hash = createHash("sha256");
  let size = 0;
  const part = await deps.store.openPart(id);
  try {
    for await (const chunk of input.data) {
      if (size + chunk.length > deps.maxBytes) throw new ArtifactTooLargeError(size + chunk.length, deps.maxBytes);
      await part.writeAt([chunk], size);
      hash.update(chunk);
      size += chunk.length;
    }
  } catch (e) {
    await part.close();
    await deps.store.discardPart(id);
    throw e;
  }
  await part.close();
  // Synced before its row exists: no trust can upload a hub artifact again, so none is left to the
  // start-up check (durability.ts).
  await deps.store.commit(id);
  await deps.store.sync(id);
  return await recordHubArtifact(deps, id, input, size, hash.digest("hex"));
}

export interface AdoptedHubArtifact extends Omit<NewHubArtifact, "data"> {
  /** A finished file under the store's scratchDir(); renamed into the store. */
  file: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * Stores a file the hub wrote (e.g. aggregated weights, hashed while written) as a complete artifact
 * without copying it: the file is renamed into the store, synced, and recorded as writeHubArtifact does.
 */
export async function adoptHubArtifact(deps: Pick<ArtifactDeps, "db" | "store" | "log">, input: AdoptedHubArtifact): Promise<Artifact> {
  validatePurpose(input.purpose, "purpose");
  const id = randomUUID();
  await deps.store.adopt(id, input.file);
  await deps.store.sync(id);
  return await recordHubArtifact(deps, id, input, input.sizeBytes, input.sha256);
}

async function recordHubArtifact(
  deps: Pick<ArtifactDeps, "db" | "store" | "log">,
  id: string,
  input: Pick<NewHubArtifact, "purpose" | "taskId" | "actor" | "shareWith">,
  size: number,
  sha256: string,
): Promise<Artifact> {
  try {
    return await deps.db.em().transactional(async (tx) => {
      const now = new Date();
      const artifact = tx.create(Artifact, {
        id,
        ownerTrustId: null,
        purpose: input.purpose,
        taskId: input.taskId ?? null,
        sizeBytes: size,
        sha256,
        storedBytes: size,
        complete: true,
        uploadSession: null,
        completedAt: now,
        syncedAt: now,
      });
      tx.persist(artifact);
      // No ORM relation ties grants to the artifact, so the artifact row must exist before they are flushed.
      await tx.flush();
      const trustIds = [...new Set(input.shareWith ?? [])];
      const known = await tx.find(Trust, { id: { $in: trustIds } }, { fields: ["id"] });
      const unknown = trustIds.find((t) => !known.some((k) => k.id === t));
      if (unknown !== undefined) throw new NotFoundError("trust", unknown);
      for (const trustId of trustIds) tx.persist(tx.create(ArtifactAccess, { artifactId: id, trustId, grantedBy: input.actor }));
      await tx.flush();
      await appendAudit(tx, {
        actor: input.actor,
        action: "artifact.created",
        target: `artifact:${id}`,
        after: { purpose: artifact.purpose, taskId: artifact.taskId, sizeBytes: size, sha256: artifact.sha256, sharedWith: trustIds },
      });
      deps.log.info({ artifactId: id, purpose: artifact.purpose, sizeBytes: size, trusts: trustIds.length }, "hub artifact stored");
      return artifact;
    });
  } catch (e) {
    // No row, no artifact: the file must not outlive the failed transaction.
    await deps.store.remove(id);
    throw e;
  }
}

/** Opens any complete artifact for a hub module (e.g. the aggregator reading a trust's model update). */
export async function readArtifact(deps: Pick<ArtifactDeps, "db" | "store">, artifactId: string, offset = 0): Promise<ArtifactReader> {
  const artifact = await deps.db.em().findOne(Artifact, { id: artifactId });
  if (!artifact) throw new NotFoundError("artifact", artifactId);
  return readComplete(deps.store, artifact, offset);
}
