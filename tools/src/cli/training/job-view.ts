/**
 * What `flip job watch` shows, as pure functions of the WatchJob items seen so far: event lines, the
 * plain-text progress lines for logs (CI), and the block a terminal redraws in place. The streaming,
 * reconnecting and writing live in job-watch.ts.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { JobEventKind, JobEventKindSchema, JobState, ParticipantState, type Job, type JobEvent, type MetricPoint, type WatchJobResponse } from "@flip/gen/flip/hub/v1/training_pb.js";
import { table, valueLabel } from "../format.js";
import { bar, isEnded, jobHeadline, metricValue, participantStateLabel, participantStatus, percentLabel, secondsLabel } from "./describe.js";

/**
 * Text from the hub (workload logs and messages come from researchers' code at a trust) without control
 * characters, so it cannot move the cursor, recolour or retitle the terminal.
 */
export const printable = (s: string) => s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "\uFFFD");

const MAX_METRIC_COLUMNS = 8;

function clock(e: JobEvent): string {
  return e.at ? timestampDate(e.at).toISOString().slice(11, 19) : "--:--:--";
}

/** One event as the lines a log shows: "12:00:03  round 2 of 5 started", "12:00:09  north log: epoch 1 loss 0.4". */
export function eventLines(e: JobEvent, codes: ReadonlyMap<string, string> = new Map()): string[] {
  const trust = printable(e.details["trust"] || codes.get(e.trustId) || e.trustId);
  const message = printable(e.message);
  const kind = valueLabel(JobEventKindSchema, e.kind, "JOB_EVENT_KIND_").replaceAll("-", " ");
  const at = clock(e);
  switch (e.kind) {
    case JobEventKind.LOG:
      // A workload's log line may hold several lines; each keeps the prefix so a reader knows its trust.
      return message.split(/\r?\n/).map((l) => `${at}  ${trust} log: ${l}`);
    case JobEventKind.WORKLOAD:
      return [`${at}  ${trust}: ${printable(e.details["kind"] || "event")}${message ? `: ${message}` : ""}`];
    case JobEventKind.ROUND_FAILED:
      return [`${at}  round ${e.round} failed${message ? `: ${message}` : ""}`];
    case JobEventKind.ENDED:
      return [`${at}  ${/^job\b/.test(message) ? message : `job ${message || "ended"}`}`];
    default:
      return [`${at}  ${message || `${kind}${e.round ? ` (round ${e.round})` : ""}`}`];
  }
}

/** The state of a watch: the latest job, trust codes, the latest metric per label and trust, what plain mode printed. */
export class JobView {
  job: Job | undefined;
  private readonly codes = new Map<string, string>();
  /** label → trust id → the newest point. */
  private readonly latest = new Map<string, Map<string, MetricPoint>>();
  /** Points plain mode has not printed yet. */
  private pendingMetrics: MetricPoint[] = [];
  private shownQueuePosition = -1;
  /** trust id → what plain mode last printed for it ("round:state:tenths"). */
  private readonly shownParticipants = new Map<string, string>();

  constructor(readonly jobId: string) {}

  /** Takes one item of the stream; returns the lines to print for good (events). */
  apply(item: WatchJobResponse): string[] {
    switch (item.item.case) {
      case "job":
        this.job = item.item.value;
        for (const p of this.job.participants) if (p.trustCode) this.codes.set(p.trustId, p.trustCode);
        return [];
      case "metric": {
        const m = item.item.value;
        if (m.attributes["trust"]) this.codes.set(m.trustId, m.attributes["trust"]);
        let byTrust = this.latest.get(m.label);
        if (!byTrust) this.latest.set(m.label, (byTrust = new Map()));
        byTrust.set(m.trustId, m);
        this.pendingMetrics.push(m);
        return [];
      }
      case "event": {
        const e = item.item.value;
        if (e.trustId && e.details["trust"]) this.codes.set(e.trustId, e.details["trust"]);
        return eventLines(e, this.codes);
      }
      default:
        return [];
    }
  }

  private code(trustId: string): string {
    return printable(this.codes.get(trustId) ?? trustId);
  }

  /**
   * For plain output: what moved since the last call. The queue position while queued, and each trust
   * that is waiting or training, when its state or progress (in tenths) changed; an update received or
   * a missed round is told by its event line.
   */
  changes(): string[] {
    const j = this.job;
    if (!j) return [];
    const lines: string[] = [];
    if (j.state === JobState.QUEUED && j.queuePosition !== this.shownQueuePosition) {
      this.shownQueuePosition = j.queuePosition;
      lines.push(`queued: position ${j.queuePosition || "?"}`);
    }
    if (j.state !== JobState.RUNNING) return lines;
    const width = Math.max(...j.participants.map((p) => this.code(p.trustId).length));
    for (const p of j.participants) {
      const tenths = p.state === ParticipantState.TRAINING && p.progress >= 0 ? Math.floor(p.progress * 10) : -1;
      const key = `${j.currentRound}:${p.state}:${tenths}`;
      if (this.shownParticipants.get(p.trustId) === key) continue;
      this.shownParticipants.set(p.trustId, key);
      if (p.state !== ParticipantState.WAITING && p.state !== ParticipantState.TRAINING) continue;
      lines.push(`round ${j.currentRound}  ${this.code(p.trustId).padEnd(width)}  ${bar(p.state === ParticipantState.TRAINING ? p.progress : 0)} ${percentLabel(p.state === ParticipantState.TRAINING ? p.progress : 0)}  ${participantStateLabel(p.state)}`);
    }
    return lines;
  }

  /** Whether metrics arrived that `takeMetricLines` has not printed. */
  get hasPendingMetrics(): boolean {
    return this.pendingMetrics.length > 0;
  }

  /** For plain output: the metrics not printed yet, one line per round and trust with each label's newest value. */
  takeMetricLines(): string[] {
    const groups = new Map<string, { round: number; trustId: string; values: Map<string, MetricPoint> }>();
    for (const m of this.pendingMetrics) {
      const key = `${m.round}\u0000${m.trustId}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { round: m.round, trustId: m.trustId, values: new Map() }));
      g.values.set(m.label, m);
    }
    this.pendingMetrics = [];
    return [...groups.values()].map((g) => {
      const values = [...g.values.values()].map((m) => `${printable(m.label)} ${metricValue(m.value)}`).join(", ");
      const last = [...g.values.values()].at(-1)!;
      const x = last.xLabel ? ` (${printable(last.xLabel)} ${metricValue(last.xValue)})` : "";
      return `round ${g.round}  ${this.code(g.trustId)}  metrics: ${values}${x}`;
    });
  }

  /** For a terminal: the block redrawn in place, the job's headline, a bar per trust, the latest metrics. */
  frame(): string[] {
    const j = this.job;
    if (!j) return [`job ${this.jobId}: waiting for the hub…`];
    const lines = [printable(jobHeadline(j))];
    if (j.state === JobState.RUNNING) {
      lines[0] += `  (${j.minUpdates} of ${j.participants.length} updates needed, ${secondsLabel(j.roundTimeoutSeconds)} per round)`;
    }
    const width = Math.max(0, ...j.participants.map((p) => this.code(p.trustId).length));
    for (const p of j.participants) {
      // Once the job ended, a trust's bar is the share of the rounds it delivered.
      const progress =
        p.state === ParticipantState.DONE
          ? p.updates / Math.max(1, j.currentRound, p.updates + p.missed)
          : p.state === ParticipantState.UPDATE_RECEIVED
            ? 1
            : p.state === ParticipantState.TRAINING
              ? p.progress
              : 0;
      const gpus = p.gpuIndices.length ? `  gpu ${p.gpuIndices.join(",")}` : "";
      lines.push(`  ${this.code(p.trustId).padEnd(width)}  ${bar(progress)} ${percentLabel(progress)}  ${printable(participantStatus(p))}${gpus}`);
    }
    const labels = [...this.latest.keys()].slice(-MAX_METRIC_COLUMNS);
    if (labels.length) {
      const trusts = j.participants.length ? j.participants.map((p) => p.trustId) : [...new Set([...this.latest.values()].flatMap((m) => [...m.keys()]))];
      const rows = trusts
        .filter((t) => labels.some((l) => this.latest.get(l)?.has(t)))
        .map((t) => {
          const points = labels.map((l) => this.latest.get(l)?.get(t));
          const newestRound = Math.max(...points.map((p) => p?.round ?? 0));
          return [`  ${this.code(t)}`, ...points.map((p) => (p ? metricValue(p.value) : "-")), String(newestRound)];
        });
      lines.push(...table(["latest metrics", ...labels.map(printable), "round"], rows).split("\n"));
    }
    return lines;
  }

  /** The closing lines: the final state and why, each trust's updates and misses, where the weights are. */
  summary(): string[] {
    const j = this.job;
    if (!j) return [];
    const lines = [printable(jobHeadline(j))];
    for (const p of j.participants) {
      lines.push(`  ${this.code(p.trustId)}: ${p.updates} update${p.updates === 1 ? "" : "s"}, ${p.missed} missed${p.lastMissReason ? ` (last: ${printable(p.lastMissReason)})` : ""}`);
    }
    return [...lines, ...this.closing()];
  }

  /** After the end: where the weights are, when there are any. */
  closing(): string[] {
    const j = this.job;
    return j && isEnded(j.state) && j.globalWeightsArtifactId ? [`weights: flip job download ${j.id} --out model.safetensors`] : [];
  }
}
