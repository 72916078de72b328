import type { EntityManager } from "@mikro-orm/postgresql";
import { NotFoundError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import { InvalidInputError } from "../domain/errors.js";

export const JOB_STATES = ["queued", "running", "completed", "failed", "aborted"] as const;
export type JobStateName = (typeof JOB_STATES)[number];
export const ENDED_JOB_STATES: readonly JobStateName[] = ["completed", "failed", "aborted"];
export type JobKindName = "train" | "evaluate";
export type RoundStateName = "open" | "aggregating" | "aggregated" | "failed";

export interface ModelRow {
  id: string;
  project_id: string;
  name: string;
  description: string;
  owner_id: string;
  image: string;
  config_json: string;
  bundle_artifact_id: string | null;
  bundle_sha256: string | null;
  bundle_size_bytes: string | number;
  file_paths: string[];
  initial_weights_artifact_id: string | null;
  created_at: Date;
  deleted_at: Date | null;
}

export interface JobRow {
  id: string;
  model_id: string;
  project_id: string;
  kind: JobKindName;
  state: JobStateName;
  trust_ids: string[];
  rounds: number;
  current_round: number;
  gpus_per_trust: number;
  min_updates: number;
  round_timeout_s: number;
  queue_seq: string;
  created_by: string;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  global_weights_artifact_id: string | null;
  /** W3C trace context of the call that created the job: its first round continues that trace. */
  trace_context: Record<string, string>;
}

export interface RoundRow {
  job_id: string;
  round: number;
  state: RoundStateName;
  started_at: Date;
  deadline: Date;
  aggregated_at: Date | null;
  input_weights_artifact_id: string | null;
  output_weights_artifact_id: string | null;
  samples: string | number;
  /** W3C trace context of the span that opened the round: its tasks and its aggregation continue it. */
  trace_context: Record<string, string>;
}

export function isEnded(state: JobStateName): boolean {
  return ENDED_JOB_STATES.includes(state);
}

export function checkId(id: string, field: string, what: string): void {
  if (!isUuid(id)) throw new InvalidInputError(field, `must be a ${what} id (UUID)`);
}

export async function findJob(em: EntityManager, jobId: string): Promise<JobRow | undefined> {
  const [row] = await em.execute<JobRow[]>("select * from job where id = ?", [jobId]);
  return row;
}

/** Locks the job's row for the rest of the transaction: every change to a job runs under this lock. */
export async function lockJob(tx: EntityManager, jobId: string): Promise<JobRow> {
  const [row] = await tx.execute<JobRow[]>("select * from job where id = ? for update", [jobId]);
  if (!row) throw new NotFoundError("job", jobId);
  return row;
}

export async function findModel(em: EntityManager, modelId: string): Promise<ModelRow | undefined> {
  const [row] = await em.execute<ModelRow[]>("select * from model where id = ?", [modelId]);
  return row;
}

/** A Postgres array literal of UUIDs (execute() would spread a JavaScript array into a list). */
export function uuidArray(ids: readonly string[]): string {
  return `{${ids.join(",")}}`;
}
