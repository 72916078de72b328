import type { EntityManager } from "@mikro-orm/postgresql";
import { NotFoundError } from "../domain/errors.js";
import { Artifact } from "./entities.js";

export interface UploadStatus {
  artifactId: string;
  /** The durable offset: the next chunk starts here. */
  storedBytes: number;
  sizeBytes: number;
  complete: boolean;
}

/** Where an upload of the trust's own artifact stands; other trusts' artifacts are NotFound. */
export async function getUploadStatus(em: EntityManager, trustId: string, artifactId: string): Promise<UploadStatus> {
  const a = await em.findOne(Artifact, { id: artifactId, ownerTrustId: trustId });
  if (!a) throw new NotFoundError("artifact", artifactId);
  return { artifactId: a.id, storedBytes: a.storedBytes, sizeBytes: a.sizeBytes, complete: a.complete };
}
