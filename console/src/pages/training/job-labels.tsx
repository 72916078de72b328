import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { JobEventKind, JobKind, JobState, ParticipantState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { Badge, type Tone } from "../../ui/page.js";

const JOB_STATES: Record<JobState, [string, Tone]> = {
  [JobState.UNSPECIFIED]: ["unknown", "neutral"],
  [JobState.QUEUED]: ["queued", "neutral"],
  [JobState.RUNNING]: ["running", "info"],
  [JobState.COMPLETED]: ["completed", "good"],
  [JobState.FAILED]: ["failed", "bad"],
  [JobState.ABORTED]: ["aborted", "warn"],
};

export const jobStateLabel = (s: JobState): string => JOB_STATES[s][0];

export function JobStateBadge({ state }: { state: JobState }) {
  const [words, tone] = JOB_STATES[state];
  return <Badge tone={tone}>{words}</Badge>;
}

export const isEndedJob = (s: JobState): boolean => s === JobState.COMPLETED || s === JobState.FAILED || s === JobState.ABORTED;

export const jobKindLabel = (k: JobKind): string => (k === JobKind.EVALUATE ? "evaluation" : "training");

/** "round 2 of 3"; a queued job is at none yet. */
export function roundText(j: Job): string {
  if (j.state === JobState.QUEUED || j.currentRound === 0) return `not started (${j.rounds} round${j.rounds === 1 ? "" : "s"})`;
  return `round ${j.currentRound} of ${j.rounds}`;
}

/** "1st", "2nd", "3rd", "4th" … for a queue position. */
export function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}

const PARTICIPANT_STATES: Record<ParticipantState, [string, Tone]> = {
  [ParticipantState.UNSPECIFIED]: ["unknown", "neutral"],
  [ParticipantState.WAITING]: ["waiting", "neutral"],
  [ParticipantState.TRAINING]: ["training", "info"],
  [ParticipantState.UPDATE_RECEIVED]: ["update received", "good"],
  [ParticipantState.MISSED]: ["missed the round", "bad"],
  [ParticipantState.DONE]: ["done", "neutral"],
};

export function ParticipantStateBadge({ state }: { state: ParticipantState }) {
  const [words, tone] = PARTICIPANT_STATES[state];
  return <Badge tone={tone}>{words}</Badge>;
}

const ROUND_STATES: Record<string, Tone> = { open: "info", aggregating: "info", aggregated: "good", failed: "bad" };

export function RoundStateBadge({ state }: { state: string }) {
  return <Badge tone={ROUND_STATES[state] ?? "neutral"}>{state}</Badge>;
}

const EVENT_KINDS: Record<JobEventKind, [string, Tone]> = {
  [JobEventKind.UNSPECIFIED]: ["event", "neutral"],
  [JobEventKind.QUEUED]: ["queued", "neutral"],
  [JobEventKind.STARTED]: ["started", "info"],
  [JobEventKind.ROUND_STARTED]: ["round started", "info"],
  [JobEventKind.UPDATE_RECEIVED]: ["update received", "good"],
  [JobEventKind.ROUND_AGGREGATED]: ["round aggregated", "good"],
  [JobEventKind.TRUST_FAILED]: ["trust failed", "bad"],
  [JobEventKind.ENDED]: ["ended", "neutral"],
  [JobEventKind.LOG]: ["log", "neutral"],
  [JobEventKind.WORKLOAD]: ["workload", "neutral"],
  [JobEventKind.ROUND_FAILED]: ["round failed", "bad"],
};

/** An event's kind in words; a workload's own event says its kind ("workload: checkpoint"). */
export function EventKindBadge({ kind, detail }: { kind: JobEventKind; detail?: string | undefined }) {
  const [words, tone] = EVENT_KINDS[kind];
  return <Badge tone={tone}>{kind === JobEventKind.WORKLOAD && detail ? `${words}: ${detail}` : words}</Badge>;
}

/** "14:03:21" today, else "2026-12-01 14:03:21": events come seconds apart. */
export function formatClock(ts: Timestamp | undefined, now = new Date()): string {
  if (!ts) return "—";
  const d = timestampDate(ts);
  const pad = (n: number) => String(n).padStart(2, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** A key for a create call: a UUID where the page is a secure context, else 128 random bits in hex. */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
