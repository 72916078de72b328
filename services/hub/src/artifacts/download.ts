import type { BufferPool } from "@flip/shared/files/buffer-pool.js";
import { FailedPreconditionError } from "../domain/errors.js";
import { findVisibleArtifact } from "./access.js";
import type { ArtifactDeps } from "./deps.js";
import type { Artifact } from "./entities.js";
import { ArtifactRangeError } from "./errors.js";
import { ARTIFACT_CHUNK_BYTES, type ArtifactStore } from "./store.js";

export interface ArtifactReader {
  artifact: Artifact;
  /** The complete artifact's checksum. */
  sha256: string;
  /** The bytes from the requested offset to the end, one chunk at a time. */
  chunks: AsyncIterable<Uint8Array>;
}

/** Opens a complete artifact that `trustId` may see, from `offset` (equal to the size: no bytes, only the checksum). */
export async function openDownload(
  deps: Pick<ArtifactDeps, "db" | "store">,
  trustId: string,
  artifactId: string,
  offset: bigint,
  chunkBytes = ARTIFACT_CHUNK_BYTES,
  buffers?: BufferPool,
): Promise<ArtifactReader> {
  const artifact = await findVisibleArtifact(deps.db.em(), trustId, artifactId);
  return readComplete(deps.store, artifact, offset, chunkBytes, buffers);
}

/**
 * Reads a complete artifact from an offset in chunks of at most `chunkBytes` (from `buffers` when given:
 * see `ArtifactStore.read`); shared by downloads and hub modules.
 */
export function readComplete(store: ArtifactStore, artifact: Artifact, offset: bigint | number, chunkBytes = ARTIFACT_CHUNK_BYTES, buffers?: BufferPool): ArtifactReader {
  if (!artifact.complete) {
    throw new FailedPreconditionError(`artifact ${artifact.id} is not complete yet (${artifact.storedBytes} of ${artifact.sizeBytes} bytes stored)`);
  }
  if (BigInt(offset) > BigInt(artifact.sizeBytes)) throw new ArtifactRangeError(Number(offset), artifact.sizeBytes);
  // The schema holds every complete artifact to a checksum.
  if (artifact.sha256 == null) throw new Error(`complete artifact ${artifact.id} has no checksum`);
  return { artifact, sha256: artifact.sha256, chunks: store.read(artifact.id, Number(offset), chunkBytes, buffers) };
}
