import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { TaskSpecSchema, TrainingAction, type TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { cancelTask } from "../tasks/cancel-task.js";
import { createTasks } from "../tasks/create-task.js";
import { findModel, uuidArray, type JobRow, type ModelRow } from "./rows.js";

/** Offers per round task before it fails: a gateway restart re-offers it. */
export const ROUND_TASK_ATTEMPTS = 10;
/** How long a STOP waits for a trust that is offline when the job ends. */
export const STOP_TASK_TIMEOUT_MS = 24 * 3_600_000;

interface RoundTaskInput {
  round: number;
  weightsArtifactId: string | null;
  /** Round deadline: the tasks' deadline too, so a silent trust's task expires with the round. */
  deadline: Date;
  /** The round's trace: its tasks continue it. */
  traceContext: Record<string, string>;
}

function trainingSpec(job: JobRow, model: ModelRow, trustGpus: number[], fields: Partial<{ action: TrainingAction; round: number; weights: string; stopReason: string }>): TaskSpec {
  return create(TaskSpecSchema, {
    kind: {
      case: "training",
      value: {
        jobId: job.id,
        projectId: job.project_id,
        image: model.image,
        gpus: job.gpus_per_trust,
        configJson: model.config_json,
        rounds: job.rounds,
        bundleArtifactId: model.bundle_artifact_id ?? "",
        action: fields.action ?? TrainingAction.ROUND,
        round: fields.round ?? 0,
        globalWeightsArtifactId: fields.weights ?? "",
        gpuIndices: trustGpus,
        evaluate: job.kind === "evaluate",
        stopReason: fields.stopReason ?? "",
        roundTimeoutSeconds: job.round_timeout_s,
      },
    },
  });
}

async function participants(em: EntityManager, jobId: string): Promise<{ trust_id: string; gpu_indices: number[] }[]> {
  return await em.execute("select trust_id, gpu_indices from job_trust where job_id = ? order by trust_id", [jobId]);
}

/** One round task per trust of the job, in one transaction with their job_task rows and the grants they download. */
export async function createRoundTasks(tx: EntityManager, job: JobRow, input: RoundTaskInput): Promise<void> {
  const trusts = await participants(tx, job.id);
  const timeoutMs = Math.max(1_000, input.deadline.getTime() - Date.now());
  const model = (await findModel(tx, job.model_id))!;
  // The round's trusts may download what it starts from: the bundle and the weights.
  const shared = [model.bundle_artifact_id, input.weightsArtifactId].filter((a): a is string => Boolean(a));
  if (shared.length) {
    await tx.execute(
      `insert into artifact_access (artifact_id, trust_id, granted_at, granted_by)
       select a, t, now(), ? from unnest(?::uuid[]) a cross join unnest(?::uuid[]) t
       where not exists (select 1 from artifact x where x.id = a and x.owner_trust_id = t)
       on conflict do nothing`,
      [`job:${job.id}`, uuidArray(shared), uuidArray(trusts.map((t) => t.trust_id))],
    );
  }
  const requests = trusts.map((t) => ({
    trustId: t.trust_id,
    projectId: job.project_id,
    spec: trainingSpec(job, model, t.gpu_indices, { round: input.round, weights: input.weightsArtifactId ?? "" }),
    timeoutMs,
    maxAttempts: ROUND_TASK_ATTEMPTS,
  }));
  const tasks = await createTasks(tx, requests, { actor: "system", traceContext: input.traceContext });
  await tx.execute(
    `insert into job_task (task_id, job_id, trust_id, round, action)
     select t.task_id, ?, t.trust_id, ?, 'round' from jsonb_to_recordset(?::jsonb) as t(task_id uuid, trust_id uuid)`,
    [job.id, input.round, JSON.stringify(tasks.map((t) => ({ task_id: t.id, trust_id: t.trustId })))],
  );
}

/** Tells every trust of a started job that it ended: their gateways stop and remove its containers. */
export async function createStopTasks(tx: EntityManager, job: JobRow, reason: string): Promise<void> {
  const trusts = await participants(tx, job.id);
  const enabled = await tx.execute<{ id: string }[]>("select id from trust where id = any(?::uuid[]) and disabled_at is null", [uuidArray(trusts.map((t) => t.trust_id))]);
  const targets = trusts.filter((t) => enabled.some((e) => e.id === t.trust_id));
  if (targets.length === 0) return;
  const model = (await findModel(tx, job.model_id))!;
  const requests = targets.map((t) => ({
    trustId: t.trust_id,
    projectId: job.project_id,
    spec: trainingSpec(job, model, t.gpu_indices, { action: TrainingAction.STOP, stopReason: reason.slice(0, 500) }),
    timeoutMs: STOP_TASK_TIMEOUT_MS,
    maxAttempts: ROUND_TASK_ATTEMPTS,
  }));
  const tasks = await createTasks(tx, requests, { actor: "system" });
  await tx.execute(
    `insert into job_task (task_id, job_id, trust_id, round, action)
     select t.task_id, ?, t.trust_id, 0, 'stop' from jsonb_to_recordset(?::jsonb) as t(task_id uuid, trust_id uuid)`,
    [job.id, JSON.stringify(tasks.map((t) => ({ task_id: t.id, trust_id: t.trustId })))],
  );
}

/** Cancels the job's round tasks that are still open (their gateways stop waiting for the round). */
export async function cancelOpenRoundTasks(tx: EntityManager, jobId: string, reason: string, actor: string): Promise<void> {
  const open = await tx.execute<{ task_id: string }[]>(
    `select jt.task_id from job_task jt join task t on t.id = jt.task_id
     where jt.job_id = ? and jt.action = 'round' and t.state in ('pending', 'offered', 'running')`,
    [jobId],
  );
  for (const t of open) await cancelTask(tx, { taskId: t.task_id, reason: reason.slice(0, 500), actor });
}
