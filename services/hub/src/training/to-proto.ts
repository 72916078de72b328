import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import {
  JobEventKind,
  JobEventSchema,
  JobKind,
  JobSchema,
  JobState,
  MetricPointSchema,
  ModelSchema,
  ParticipantState,
  type Job,
  type JobEvent,
  type MetricPoint,
  type Model,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import { loadPeople, type People } from "../identity/people.js";
import type { JobEventKindName } from "./events.js";
import { isEnded, uuidArray, type JobRow, type JobStateName, type ModelRow, type RoundRow } from "./rows.js";

const ts = (d: Date | null | undefined) => (d ? timestampFromDate(new Date(d)) : undefined);

/** Models as the API shows them, with their owners: one query for the people of a whole page. */
export async function modelsToProto(em: EntityManager, rows: readonly ModelRow[]): Promise<Model[]> {
  if (rows.length === 0) return [];
  const people = await loadPeople(em, rows.map((m) => m.owner_id));
  return rows.map((m) => modelMessage(m, people));
}

/** One model as a message (see modelsToProto). */
export async function modelToProto(em: EntityManager, m: ModelRow): Promise<Model> {
  const [message] = await modelsToProto(em, [m]);
  return message!;
}

function modelMessage(m: ModelRow, people: People): Model {
  return create(ModelSchema, {
    id: m.id,
    projectId: m.project_id,
    name: m.name,
    description: m.description,
    ownerId: m.owner_id,
    owner: people.of(m.owner_id),
    image: m.image,
    configJson: m.config_json,
    createdAt: ts(m.created_at),
    deleted: m.deleted_at !== null,
    bundleArtifactId: m.bundle_artifact_id ?? "",
    bundleSha256: m.bundle_sha256 ?? "",
    bundleSizeBytes: BigInt(m.bundle_size_bytes ?? 0),
    initialWeightsArtifactId: m.initial_weights_artifact_id ?? "",
    filePaths: m.file_paths ?? [],
  });
}

const STATE: Record<JobStateName, JobState> = {
  queued: JobState.QUEUED,
  running: JobState.RUNNING,
  completed: JobState.COMPLETED,
  failed: JobState.FAILED,
  aborted: JobState.ABORTED,
};

interface ParticipantRow {
  job_id: string;
  trust_id: string;
  code: string;
  gpu_indices: number[];
  updates: number;
  missed: number;
  last_miss_reason: string | null;
  task_state: string | null;
  progress: number | null;
  has_update: boolean;
}

type RoundSummaryRow = RoundRow & { updates: number; missed: number };

/** What a page of jobs needs besides their rows, each part read for the whole page at once. */
interface JobPageParts {
  people: People;
  modelNames: Map<string, string>;
  queuePositions: Map<string, number>;
  participants: Map<string, ParticipantRow[]>;
  rounds: Map<string, RoundSummaryRow[]>;
}

function groupBy<T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const r of rows) {
    const list = out.get(key(r));
    if (list) list.push(r);
    else out.set(key(r), [r]);
  }
  return out;
}

/**
 * Reads the parts of a page of jobs in at most five statements whatever the page's size: their creators,
 * model names, queue positions (only when one is queued), each trust's part in its current round, and
 * their rounds. The rows' own state and round are the snapshot every part is read against.
 */
async function loadJobPageParts(em: EntityManager, rows: readonly JobRow[]): Promise<JobPageParts> {
  const ids = uuidArray(rows.map((j) => j.id));
  const queued = rows.filter((j) => j.state === "queued");
  const [people, models, positions, parts, rounds] = await Promise.all([
    loadPeople(em, rows.map((j) => j.created_by)),
    em.execute<{ id: string; name: string }[]>("select id, name from model where id = any(?::uuid[])", [uuidArray([...new Set(rows.map((j) => j.model_id))])]),
    queued.length
      ? em.execute<{ id: string; n: number }[]>(
          `select q.id, (select count(*)::int from job j where j.state = 'queued' and j.queue_seq <= q.seq) as n
           from unnest(?::uuid[], ?::bigint[]) as q(id, seq)`,
          [uuidArray(queued.map((j) => j.id)), `{${queued.map((j) => j.queue_seq).join(",")}}`],
        )
      : Promise.resolve([]),
    em.execute<ParticipantRow[]>(
      `select jt.job_id, jt.trust_id, tr.code, jt.gpu_indices, jt.updates, jt.missed, jt.last_miss_reason, t.state as task_state, t.progress,
              exists (select 1 from job_update u where u.job_id = jt.job_id and u.round = q.round and u.trust_id = jt.trust_id) as has_update
       from unnest(?::uuid[], ?::int[]) as q(job_id, round)
       join job_trust jt on jt.job_id = q.job_id
       join trust tr on tr.id = jt.trust_id
       left join lateral (select t.state, t.progress from job_task x join task t on t.id = x.task_id
                          where x.job_id = jt.job_id and x.trust_id = jt.trust_id and x.round = q.round and x.action = 'round'
                          order by t.created_at desc limit 1) t on true
       order by jt.job_id, tr.code`,
      [ids, `{${rows.map((j) => j.current_round).join(",")}}`],
    ),
    em.execute<RoundSummaryRow[]>(
      `select r.*, (select count(*)::int from job_update u where u.job_id = r.job_id and u.round = r.round) as updates,
              (select count(*)::int from job_task x join task t on t.id = x.task_id
                where x.job_id = r.job_id and x.round = r.round and x.action = 'round' and t.state in ('failed', 'expired', 'cancelled')) as missed
       from job_round r where r.job_id = any(?::uuid[]) order by r.job_id, r.round`,
      [ids],
    ),
  ]);
  return {
    people,
    modelNames: new Map(models.map((m) => [m.id, m.name])),
    queuePositions: new Map(positions.map((p) => [p.id, p.n])),
    participants: groupBy(parts, (p) => p.job_id),
    rounds: groupBy(rounds, (r) => r.job_id),
  };
}

/** Jobs as the API shows them (see jobToProto), in a fixed number of statements per page (see loadJobPageParts). */
export async function jobsToProto(em: EntityManager, rows: readonly JobRow[]): Promise<Job[]> {
  if (rows.length === 0) return [];
  const parts = await loadJobPageParts(em, rows);
  return rows.map((j) => jobMessage(j, parts));
}

/** A job as the API shows it: its state, queue position, each trust's part in the current round, its rounds, and who created it. */
export async function jobToProto(em: EntityManager, j: JobRow): Promise<Job> {
  const [message] = await jobsToProto(em, [j]);
  return message!;
}

function jobMessage(j: JobRow, page: JobPageParts): Job {
  const participantState = (p: ParticipantRow): ParticipantState => {
    if (isEnded(j.state)) return ParticipantState.DONE;
    if (p.has_update) return ParticipantState.UPDATE_RECEIVED;
    switch (p.task_state) {
      case "running":
        return ParticipantState.TRAINING;
      case "failed":
      case "expired":
      case "cancelled":
        return ParticipantState.MISSED;
      default:
        return ParticipantState.WAITING;
    }
  };
  return create(JobSchema, {
    id: j.id,
    modelId: j.model_id,
    modelName: page.modelNames.get(j.model_id) ?? "",
    projectId: j.project_id,
    kind: j.kind === "evaluate" ? JobKind.EVALUATE : JobKind.TRAIN,
    state: STATE[j.state],
    trustIds: j.trust_ids,
    rounds: j.rounds,
    currentRound: j.current_round,
    gpusPerTrust: j.gpus_per_trust,
    minUpdates: j.min_updates,
    roundTimeoutSeconds: j.round_timeout_s,
    queuePosition: page.queuePositions.get(j.id) ?? 0,
    endReason: j.end_reason ?? "",
    createdAt: ts(j.created_at),
    startedAt: ts(j.started_at),
    endedAt: ts(j.ended_at),
    createdBy: j.created_by,
    creator: page.people.of(j.created_by),
    globalWeightsArtifactId: j.global_weights_artifact_id ?? "",
    participants: (page.participants.get(j.id) ?? []).map((p) => ({
      trustId: p.trust_id,
      trustCode: p.code,
      gpuIndices: p.gpu_indices,
      state: participantState(p),
      updates: p.updates,
      missed: p.missed,
      lastMissReason: p.last_miss_reason ?? "",
      progress: p.has_update ? 1 : p.task_state === "running" ? Number(p.progress ?? 0) : 0,
    })),
    roundHistory: (page.rounds.get(j.id) ?? []).map((r) => ({
      round: r.round,
      state: r.state,
      updates: r.updates,
      missed: r.missed,
      startedAt: ts(r.started_at),
      deadline: ts(r.deadline),
      aggregatedAt: ts(r.aggregated_at),
      globalWeightsArtifactId: r.output_weights_artifact_id ?? "",
      samples: BigInt(r.samples ?? 0),
    })),
  });
}

const EVENT_KIND: Record<JobEventKindName, JobEventKind> = {
  queued: JobEventKind.QUEUED,
  started: JobEventKind.STARTED,
  round_started: JobEventKind.ROUND_STARTED,
  update_received: JobEventKind.UPDATE_RECEIVED,
  round_aggregated: JobEventKind.ROUND_AGGREGATED,
  trust_failed: JobEventKind.TRUST_FAILED,
  ended: JobEventKind.ENDED,
  log: JobEventKind.LOG,
  workload: JobEventKind.WORKLOAD,
  round_failed: JobEventKind.ROUND_FAILED,
};

export interface EventRow {
  id: string;
  kind: JobEventKindName;
  trust_id: string | null;
  round: number;
  message: string;
  details: Record<string, string>;
  at: Date;
}

export function eventToProto(e: EventRow): JobEvent {
  return create(JobEventSchema, {
    kind: EVENT_KIND[e.kind] ?? JobEventKind.UNSPECIFIED,
    trustId: e.trust_id ?? "",
    round: e.round,
    message: e.message,
    at: ts(e.at),
    details: e.details ?? {},
    seq: BigInt(e.id),
  });
}

export interface MetricRow {
  id: string;
  trust_id: string;
  round: number;
  label: string;
  value: number;
  x_label: string;
  x_value: number;
  recorded_at: Date;
}

/** A metric point; `code` (the trust's code, when joined) is added as the attribute "trust". */
export function metricToProto(m: MetricRow & { code?: string }): MetricPoint {
  return create(MetricPointSchema, {
    attributes: m.code ? { trust: m.code } : {},
    trustId: m.trust_id,
    round: m.round,
    label: m.label,
    value: Number(m.value),
    xLabel: m.x_label,
    xValue: Number(m.x_value),
    recordedAt: ts(m.recorded_at),
  });
}
