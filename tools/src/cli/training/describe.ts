/** How models, jobs and metrics read in the terminal (`flip model …`, `flip job …`). */
import {
  JobKind,
  JobKindSchema,
  JobState,
  JobStateSchema,
  ParticipantState,
  ParticipantStateSchema,
  type Job,
  type JobParticipant,
  type MetricPoint,
  type Model,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import { personLabel, table, when, valueLabel } from "../format.js";

export const jobStateLabel = (s: JobState) => valueLabel(JobStateSchema, s, "JOB_STATE_");
export const jobKindLabel = (k: JobKind) => (k === JobKind.UNSPECIFIED ? "train" : valueLabel(JobKindSchema, k, "JOB_KIND_"));
/** "waiting", "training", "update received", "missed", "done". */
export const participantStateLabel = (s: ParticipantState) =>
  valueLabel(ParticipantStateSchema, s, "PARTICIPANT_STATE_").replaceAll("-", " ");

export const isEnded = (s: JobState) => s === JobState.COMPLETED || s === JobState.FAILED || s === JobState.ABORTED;

export function bytesLabel(n: number | bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1048576) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1048576).toFixed(1)} MiB`;
}

/** 90 → "90s", 600 → "10m", 3600 → "1h", 5400 → "90m". */
export function secondsLabel(s: number): string {
  if (s > 0 && s % 3600 === 0) return `${s / 3600}h`;
  if (s > 0 && s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

/** A fixed-width progress bar, "[#####-----]"; an unknown progress (below 0) draws an empty one. */
export function bar(progress: number, width = 20): string {
  if (!(progress >= 0)) return `[${"-".repeat(width)}]`;
  const filled = Math.round(Math.min(1, progress) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

export const percentLabel = (progress: number) => (progress >= 0 ? `${Math.round(Math.min(1, progress) * 100)}%`.padStart(4) : "   ?");

/** A metric value in at most about 8 characters: 0.4123, 1234.5, 1.2e-7. */
export function metricValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** A trust's state in the current round, in words, with why it missed. */
export function participantStatus(p: JobParticipant): string {
  const state = participantStateLabel(p.state);
  if (p.state === ParticipantState.MISSED && p.lastMissReason) return `${state}: ${p.lastMissReason}`;
  if (p.state === ParticipantState.DONE) return `${state} (${p.updates} update${p.updates === 1 ? "" : "s"}, ${p.missed} missed)`;
  return state;
}

const roundOf = (j: Job) => (j.state === JobState.QUEUED ? "-" : `${j.currentRound}/${j.rounds}`);

export function describeModel(m: Model): string {
  const lines = [
    `${m.name}  (${m.id})${m.deleted ? "  [deleted]" : ""}`,
    `project: ${m.projectId}   owner: ${personLabel(m.owner, m.ownerId)}   created: ${when(m.createdAt)}`,
    `image: ${m.image}`,
    m.filePaths.length ? `files: ${m.filePaths.length} (${bytesLabel(m.bundleSizeBytes)}, sha256 ${m.bundleSha256})` : "files: none",
    `initial weights: ${m.initialWeightsArtifactId ? `artifact ${m.initialWeightsArtifactId}` : "none (the workload initialises them)"}`,
  ];
  if (m.description) lines.splice(1, 0, m.description);
  if (m.configJson && m.configJson.trim() !== "{}") lines.push(`config: ${m.configJson.trim().replace(/\s*\n\s*/g, " ")}`);
  if (m.filePaths.length) lines.push(...m.filePaths.slice(0, 50).map((p) => `  ${p}`), ...(m.filePaths.length > 50 ? [`  … and ${m.filePaths.length - 50} more`] : []));
  return lines.join("\n");
}

export const modelsTable = (models: Model[]) =>
  table(
    ["ID", "NAME", "IMAGE", "FILES", "CREATED"],
    models.map((m) => [m.id, m.name, m.image, m.filePaths.length ? `${m.filePaths.length} (${bytesLabel(m.bundleSizeBytes)})` : "-", when(m.createdAt)]),
  );

/** The one line that says where a job is: state, round or queue position, and why it ended. */
export function jobHeadline(j: Job): string {
  const where =
    j.state === JobState.QUEUED
      ? `queued, position ${j.queuePosition || "?"}`
      : j.state === JobState.RUNNING
        ? `running, round ${j.currentRound} of ${j.rounds}`
        : `${jobStateLabel(j.state)}${j.endReason ? `: ${j.endReason}` : ""}`;
  return `job ${j.id} (${jobKindLabel(j.kind)} ${j.modelName || j.modelId}): ${where}`;
}

export function describeJob(j: Job): string {
  const lines = [
    jobHeadline(j),
    `model: ${j.modelName ? `${j.modelName} (${j.modelId})` : j.modelId}   project: ${j.projectId}   created by: ${j.createdBy ? personLabel(j.creator, j.createdBy) : "-"}`,
    `rounds: ${j.rounds}   updates needed per round: ${j.minUpdates} of ${j.participants.length || j.trustIds.length}   round timeout: ${secondsLabel(j.roundTimeoutSeconds)}   GPUs per trust: ${j.gpusPerTrust}`,
    `created: ${when(j.createdAt)}   started: ${when(j.startedAt)}   ended: ${when(j.endedAt)}`,
  ];
  if (j.globalWeightsArtifactId) lines.push(`global weights: artifact ${j.globalWeightsArtifactId} (flip job download ${j.id} --out model.safetensors)`);
  if (j.participants.length) {
    lines.push(
      "",
      table(
        ["TRUST", "GPUS", "STATE", "PROGRESS", "UPDATES", "MISSED", "LAST MISS"],
        j.participants.map((p) => [
          p.trustCode || p.trustId,
          p.gpuIndices.length ? p.gpuIndices.join(",") : "-",
          participantStateLabel(p.state),
          p.state === ParticipantState.TRAINING ? percentLabel(p.progress).trim() : "-",
          String(p.updates),
          String(p.missed),
          p.lastMissReason || "-",
        ]),
      ),
    );
  }
  if (j.roundHistory.length) {
    lines.push(
      "",
      table(
        ["ROUND", "STATE", "UPDATES", "MISSED", "SAMPLES", "STARTED", "AGGREGATED"],
        j.roundHistory.map((r) => [String(r.round), r.state, String(r.updates), String(r.missed), String(r.samples), when(r.startedAt), when(r.aggregatedAt)]),
      ),
    );
  }
  return lines.join("\n");
}

export const jobsTable = (jobs: Job[]) =>
  table(
    ["ID", "MODEL", "KIND", "STATE", "ROUND", "TRUSTS", "CREATED", "END REASON"],
    jobs.map((j) => [
      j.id,
      j.modelName || j.modelId,
      jobKindLabel(j.kind),
      j.state === JobState.QUEUED ? `queued #${j.queuePosition}` : jobStateLabel(j.state),
      roundOf(j),
      j.participants.length ? j.participants.map((p) => p.trustCode).join(",") : String(j.trustIds.length),
      when(j.createdAt),
      j.endReason.slice(0, 60),
    ]),
  );

/** The trust a metric came from: its code when the hub sent it, else its id. */
export const metricTrust = (m: MetricPoint, codes?: Map<string, string>) => m.attributes["trust"] || codes?.get(m.trustId) || m.trustId;

export const metricsTable = (metrics: MetricPoint[], codes?: Map<string, string>) =>
  table(
    ["ROUND", "TRUST", "LABEL", "X", "VALUE", "RECORDED"],
    metrics.map((m) => [String(m.round), metricTrust(m, codes), m.label, m.xLabel ? `${m.xLabel}=${metricValue(m.xValue)}` : "-", metricValue(m.value), when(m.recordedAt)]),
  );
