import type { EntityManager } from "@mikro-orm/postgresql";
import type { JobRow } from "./rows.js";

/**
 * The artifact holding a job's averaged weights: of `round`, or with 0 the latest (the job's global
 * weights, and the last round that produced any). `artifactId` is null when there are none yet.
 */
export async function weightsOf(em: EntityManager, job: JobRow, round: number): Promise<{ round: number; artifactId: string | null }> {
  if (round !== 0) {
    const [r] = await em.execute<{ output_weights_artifact_id: string | null }[]>(
      "select output_weights_artifact_id from job_round where job_id = ? and round = ?",
      [job.id, round],
    );
    return { round, artifactId: r?.output_weights_artifact_id ?? null };
  }
  const [r] = await em.execute<{ round: number }[]>("select max(round) as round from job_round where job_id = ? and output_weights_artifact_id is not null", [job.id]);
  return { round: r?.round ?? 0, artifactId: job.global_weights_artifact_id };
}
