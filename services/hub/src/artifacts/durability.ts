import { createHash } from "node:crypto";
import type { Logger } from "@flip/shared/logging/logger.js";
import { appendAudit } from "../audit/chain.js";
import type { Database } from "../db/database.js";
import { Artifact } from "./entities.js";
import { ARTIFACT_CHUNK_BYTES, type ArtifactStore } from "./store.js";

/**
 * When artifact bytes reach the disk. An upload is answered complete once its checksum matched and the
 * row says so; syncing a large file first would hold the client for as long as the disk takes (seconds
 * per GiB), so the file and its directory entry are synced just after, here, and `synced_at` records it.
 * A crash in that window can leave a complete row over damaged or missing bytes: the hub re-verifies
 * such artifacts when it starts (`verifyUnsyncedArtifacts`), before anyone can download them.
 */
export class BackgroundSyncs {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly store: ArtifactStore,
    private readonly log: Logger,
  ) {}

  /** Syncs a just-completed artifact and records it; a failure is logged and left to the next start's check. */
  schedule(artifactId: string): void {
    const done: Promise<void> = syncAndRecord(this.db, this.store, artifactId)
      .catch((e: unknown) => this.log.error({ artifactId, err: e }, "could not sync a complete artifact; the next hub start re-verifies it"))
      .finally(() => this.pending.delete(done));
    this.pending.add(done);
  }

  /** Resolves once every scheduled sync has ended (the hub waits for this when it stops). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }
}

async function syncAndRecord(db: Database, store: ArtifactStore, artifactId: string): Promise<void> {
  await store.sync(artifactId);
  await db.em().nativeUpdate(Artifact, { id: artifactId, complete: true, syncedAt: null }, { syncedAt: new Date() });
}

/**
 * Checks every complete artifact that was never recorded synced (the hub stopped between answering it
 * complete and syncing it): one whose bytes still hash to its checksum is synced and recorded; any other
 * goes back to incomplete from offset 0, its file removed, so its owner's next upload starts over and
 * nobody downloads damaged bytes. Returns how many were put back.
 */
export async function verifyUnsyncedArtifacts(deps: { db: Database; store: ArtifactStore; log: Logger }): Promise<number> {
  const { db, store, log } = deps;
  const unsynced = await db.em().find(Artifact, { complete: true, syncedAt: null }, { orderBy: { completedAt: "asc" } });
  let reverted = 0;
  for (const artifact of unsynced) {
    if (await storedBytesMatch(store, artifact)) {
      await syncAndRecord(db, store, artifact.id);
      log.info({ artifactId: artifact.id }, "complete artifact verified and synced after a restart");
      continue;
    }
    await db.em().transactional(async (tx) => {
      const updated = await tx.nativeUpdate(
        Artifact,
        { id: artifact.id, complete: true, syncedAt: null },
        { complete: false, storedBytes: 0, completedAt: null, uploadSession: null },
      );
      if (updated === 0) return;
      await appendAudit(tx, {
        actor: "system",
        action: "artifact.reverted",
        target: `artifact:${artifact.id}`,
        before: { complete: true, sizeBytes: artifact.sizeBytes, sha256: artifact.sha256 },
        after: { complete: false, storedBytes: 0, reason: "its bytes were damaged by a stop before they reached the disk" },
      });
    });
    await store.remove(artifact.id);
    await store.discardPart(artifact.id);
    reverted++;
    log.error(
      { artifactId: artifact.id, ownerTrustId: artifact.ownerTrustId, sizeBytes: artifact.sizeBytes },
      "a complete artifact was damaged before it reached the disk; it is incomplete again and its owner's next upload starts over",
    );
  }
  return reverted;
}

/** Whether the stored file has exactly the artifact's size and checksum; a missing file does not. */
async function storedBytesMatch(store: ArtifactStore, artifact: Artifact): Promise<boolean> {
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of store.read(artifact.id, 0, ARTIFACT_CHUNK_BYTES)) {
      hash.update(chunk);
      size += chunk.length;
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
  return size === artifact.sizeBytes && hash.digest("hex") === artifact.sha256;
}
