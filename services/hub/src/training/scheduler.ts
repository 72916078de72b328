import type { EntityManager } from "@mikro-orm/postgresql";
import { appendAudit } from "../audit/chain.js";
import { appendJobEvents } from "./events.js";
import { advertisedGpus } from "./jobs.js";
import { openRound } from "./rounds.js";
import { findModel, lockJob, uuidArray, type JobRow } from "./rows.js";

/** Serialises scheduling passes across hub replicas (pg_advisory_xact_lock key). */
const SCHEDULER_LOCK = 7_270_008;

/** Which host GPUs a job gets at each trust. */
export type GpuAssignment = Map<string, number[]>;

/**
 * Picks GPUs for queued jobs, first come first served. A job starts when every one of its trusts has
 * enough free GPUs (advertised minus those held by running jobs); a job that cannot start yet reserves
 * its trusts, so later jobs never take the GPUs it waits for, while jobs on other trusts go ahead. CPU
 * jobs (0 GPUs) need no capacity. Pure: the caller reads the state and applies the plan.
 */
export function planStarts(
  queued: Pick<JobRow, "id" | "trust_ids" | "gpus_per_trust">[],
  advertised: Map<string, number[]>,
  inUse: Map<string, Set<number>>,
): Map<string, GpuAssignment> {
  const used = new Map([...inUse].map(([t, s]) => [t, new Set(s)]));
  const reserved = new Set<string>();
  const starts = new Map<string, GpuAssignment>();
  for (const job of queued) {
    const assignment: GpuAssignment = new Map();
    let fits = true;
    for (const trust of job.trust_ids) {
      if (job.gpus_per_trust === 0) {
        assignment.set(trust, []);
        continue;
      }
      const free = (advertised.get(trust) ?? []).filter((g) => !used.get(trust)?.has(g));
      if (reserved.has(trust) || free.length < job.gpus_per_trust) fits = false;
      else assignment.set(trust, free.slice(0, job.gpus_per_trust));
    }
    if (!fits) {
      for (const trust of job.trust_ids) reserved.add(trust);
      continue;
    }
    for (const [trust, gpus] of assignment) {
      const set = used.get(trust) ?? new Set<number>();
      for (const g of gpus) set.add(g);
      used.set(trust, set);
    }
    starts.set(job.id, assignment);
  }
  return starts;
}

/** One scheduling pass: starts every queued job that fits now. Returns the ids started. */
export async function schedulePass(em: EntityManager): Promise<string[]> {
  return await em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(${SCHEDULER_LOCK})`);
    const [mode] = await tx.execute<{ enabled: boolean }[]>("select enabled from deployment_mode where id = 1");
    if (mode?.enabled) return [];
    const queued = await tx.execute<JobRow[]>("select * from job where state = 'queued' order by queue_seq");
    if (queued.length === 0) return [];
    const trustIds = [...new Set(queued.flatMap((j) => j.trust_ids))];
    const trusts = await tx.execute<{ id: string; health: unknown }[]>("select id, health from trust where id = any(?::uuid[])", [uuidArray(trustIds)]);
    const held = await tx.execute<{ trust_id: string; gpu_indices: number[] }[]>(
      "select jt.trust_id, jt.gpu_indices from job_trust jt join job j on j.id = jt.job_id where j.state = 'running' and cardinality(jt.gpu_indices) > 0",
    );
    const inUse = new Map<string, Set<number>>();
    for (const h of held) {
      const set = inUse.get(h.trust_id) ?? new Set<number>();
      for (const g of h.gpu_indices) set.add(g);
      inUse.set(h.trust_id, set);
    }
    const plan = planStarts(queued, new Map(trusts.map((t) => [t.id, advertisedGpus(t.health)])), inUse);
    for (const [jobId, assignment] of plan) await startJob(tx, jobId, assignment);
    return [...plan.keys()];
  });
}

async function startJob(tx: EntityManager, jobId: string, assignment: GpuAssignment): Promise<void> {
  const job = await lockJob(tx, jobId);
  if (job.state !== "queued") return;
  const now = new Date();
  await tx.execute("update job set state = 'running', started_at = ? where id = ?", [now, jobId]);
  for (const [trust, gpus] of assignment) {
    await tx.execute("update job_trust set gpu_indices = ?::integer[] where job_id = ? and trust_id = ?", [`{${gpus.join(",")}}`, jobId, trust]);
  }
  const gpuNote = job.gpus_per_trust > 0 ? ` with ${job.gpus_per_trust} GPU${job.gpus_per_trust === 1 ? "" : "s"} per trust` : "";
  await appendJobEvents(tx, jobId, [{ kind: "started", message: `started on ${job.trust_ids.length} trust${job.trust_ids.length === 1 ? "" : "s"}${gpuNote}`, dedupeKey: "started" }]);
  await appendAudit(tx, {
    actor: "system",
    action: "job.started",
    target: `job:${jobId}`,
    before: { state: "queued" },
    after: { state: "running", gpus: Object.fromEntries(assignment) },
  });
  const model = (await findModel(tx, job.model_id))!;
  await openRound(tx, { ...job, state: "running", started_at: now }, 1, model.initial_weights_artifact_id);
}

/** Position of each queued job (1 = next), in queue order. */
export async function queuePositions(em: EntityManager): Promise<Map<string, number>> {
  const rows = await em.execute<{ id: string }[]>("select id from job where state = 'queued' order by queue_seq");
  return new Map(rows.map((r, i) => [r.id, i + 1]));
}
