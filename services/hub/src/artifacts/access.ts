import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { NotFoundError } from "../domain/errors.js";
import { Trust } from "../trusts/entities.js";
import { Artifact, ArtifactAccess } from "./entities.js";

/**
 * The artifact if `trustId` may see it: its owner, or a trust it was granted to. Anything else is
 * NotFound, the same answer as for an id that does not exist, so a trust learns nothing of others' artifacts.
 */
export async function findVisibleArtifact(em: EntityManager, trustId: string, artifactId: string): Promise<Artifact> {
  const artifact = await em.findOne(Artifact, { id: artifactId });
  if (artifact && artifact.ownerTrustId === trustId) return artifact;
  if (artifact && (await em.count(ArtifactAccess, { artifactId, trustId })) > 0) return artifact;
  throw new NotFoundError("artifact", artifactId);
}

export interface AccessGrant {
  artifactId: string;
  trustId: string;
  /** Who grants, for the audit log (e.g. "system", "user:<id>"). */
  actor: string;
}

/**
 * Lets a trust download an artifact it does not own (e.g. the global weights of a round). Idempotent:
 * granting twice, or to the owner, changes nothing and writes no second audit entry. Returns whether a
 * grant was added.
 */
export async function grantArtifactAccess(em: EntityManager, grant: AccessGrant): Promise<boolean> {
  return await em.transactional(async (tx) => {
    const artifact = await tx.findOne(Artifact, { id: grant.artifactId });
    if (!artifact) throw new NotFoundError("artifact", grant.artifactId);
    if ((await tx.count(Trust, { id: grant.trustId })) === 0) throw new NotFoundError("trust", grant.trustId);
    if (artifact.ownerTrustId === grant.trustId) return false;
    // "on conflict do nothing" keeps two replicas granting the same trust at once from failing either.
    const inserted = await tx.execute<{ trust_id: string }[]>(
      "insert into artifact_access (artifact_id, trust_id, granted_at, granted_by) values (?, ?, ?, ?) on conflict do nothing returning trust_id",
      [grant.artifactId, grant.trustId, new Date(), grant.actor],
    );
    if (inserted.length === 0) return false;
    await appendAudit(tx, {
      actor: grant.actor,
      action: "artifact.access_granted",
      target: `artifact:${grant.artifactId}`,
      after: { trustId: grant.trustId },
    });
    return true;
  });
}
