import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import {
  JobService,
  JobState,
  ModelService,
  ParticipantState,
  type Job,
  type JobEvent,
  type JobParticipant,
  type JobRound,
  type MetricPoint,
  type WatchJobResponse,
} from "@flip/gen/flip/hub/v1/training_pb.js";
import type { User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { useClient, useUser } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { DataTable } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatCount, formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { useStream, type StreamStatus } from "../../ui/use-stream.js";
import { EventKindBadge, formatClock, isEndedJob, JobStateBadge, jobKindLabel, ordinal, ParticipantStateBadge, RoundStateBadge } from "./job-labels.js";
import { JobMetrics } from "./job-metrics.js";
import { laterJobView } from "./job-view-order.js";
import { mayRunJobs } from "./model-access.js";
import { useEvery } from "../../ui/use-every.js";
import { WeightsDownload } from "./weights-download.js";
import "./training.css";

/** How long after an event the job itself is read again (events come in bursts). */
const REFRESH_AFTER_EVENT_MS = 600;
/** How often a live job is read again even without events (queue positions move, progress changes). */
const REFRESH_EVERY_MS = 4_000;
/** The events list shows at most this many, newest first. */
const EVENTS_SHOWN = 500;

export function JobPage() {
  const { jobId = "" } = useParams();
  // A new job id is a new page: nothing of the last job's stream carries over.
  return <JobView key={jobId} jobId={jobId} />;
}

const metricKey = (m: MetricPoint) => `${m.trustId}|${m.label}|${m.round}|${m.xLabel}|${m.xValue}|${m.recordedAt?.seconds ?? ""}.${m.recordedAt?.nanos ?? ""}`;

/**
 * A job's events and metrics from WatchJob (stored ones replayed first, then new ones as they arrive),
 * each kept once however often the stream reconnects and replays; `onEvent` hears of every new event.
 */
function useJobStream(jobId: string, onJob: (j: Job) => void, onEvent: () => void): { events: JobEvent[]; metrics: MetricPoint[]; status: StreamStatus } {
  const jobs = useClient(JobService);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [metrics, setMetrics] = useState<MetricPoint[]>([]);
  const seen = useRef(new Set<string>());
  const pending = useRef<{ events: JobEvent[]; metrics: MetricPoint[]; timer: ReturnType<typeof setTimeout> | undefined }>({ events: [], metrics: [], timer: undefined });
  // Messages come in bursts (a replay can be thousands): they are added in one render per burst.
  const flush = useCallback(() => {
    const p = pending.current;
    p.timer = undefined;
    const [newEvents, newMetrics] = [p.events, p.metrics];
    p.events = [];
    p.metrics = [];
    if (newEvents.length) setEvents((old) => [...old, ...newEvents]);
    if (newMetrics.length) setMetrics((old) => [...old, ...newMetrics]);
  }, []);
  useEffect(() => () => clearTimeout(pending.current.timer), []);
  const stream = useStream(
    (signal) => jobs.watchJob({ jobId }, { signal }),
    (m: WatchJobResponse) => {
      const p = pending.current;
      if (m.item.case === "job") {
        onJob(m.item.value);
        return;
      }
      const key = m.item.case === "event" ? `e${m.item.value.seq}` : m.item.case === "metric" ? `m${metricKey(m.item.value)}` : undefined;
      if (!key || seen.current.has(key)) return;
      seen.current.add(key);
      if (m.item.case === "event") {
        p.events.push(m.item.value);
        onEvent();
      } else if (m.item.case === "metric") {
        p.metrics.push(m.item.value);
      }
      p.timer ??= setTimeout(flush, 50);
    },
    [jobId],
  );
  // The end is told in the same render as the last burst: "its full record" is never shown short of it.
  const [endShown, setEndShown] = useState(false);
  useEffect(() => {
    if (!stream.ended) return;
    clearTimeout(pending.current.timer);
    flush();
    setEndShown(true);
  }, [stream.ended, flush]);
  return { events, metrics, status: { ...stream, ended: endShown } };
}

function JobView({ jobId }: { jobId: string }) {
  const user = useUser();
  const jobsClient = useClient(JobService);
  const models = useClient(ModelService);
  const projects = useClient(ProjectService);
  const loaded = useLoad((signal) => jobsClient.getJob({ jobId }, { signal }).then((r) => r.job!), [jobId]);
  const [job, setJob] = useState<Job>();
  // Reads, the live stream and an abort all tell of the job; none may take the page back to an older view.
  const showJob = useCallback((j: Job) => setJob((shown) => laterJobView(shown, j)), []);
  useEffect(() => {
    if (loaded.data) showJob(loaded.data);
  }, [loaded.data, showJob]);

  const refreshTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(refreshTimer.current), []);
  const reload = loaded.reload;
  const onEvent = useCallback(() => {
    refreshTimer.current ??= setTimeout(() => {
      refreshTimer.current = undefined;
      reload();
    }, REFRESH_AFTER_EVENT_MS);
  }, [reload]);
  const { events, metrics, status } = useJobStream(jobId, showJob, onEvent);
  const ended = job ? isEndedJob(job.state) : false;
  useEvery(REFRESH_EVERY_MS, reload, Boolean(job) && !ended);

  const modelId = job?.modelId;
  const projectId = job?.projectId;
  const context = useLoad(
    async (signal) => {
      if (!modelId || !projectId) return undefined;
      const [m, p] = await Promise.all([models.getModel({ modelId }, { signal }), projects.getProject({ projectId }, { signal })]);
      return { model: m.model!, project: p.project! };
    },
    [modelId, projectId],
  );

  const participants = job?.participants;
  const trustCodes = useMemo(() => new Map((participants ?? []).map((p) => [p.trustId, p.trustCode])), [participants]);

  if (!job) {
    return (
      <Page title="Training job">
        {loaded.error ? <ErrorMessage error={loaded.error} prefix="Could not load the job" /> : <Loading label="Loading the job…" minHeight="24rem" />}
      </Page>
    );
  }
  const canAbort = !ended && context.data !== undefined && mayRunJobs(user, context.data.model, context.data.project);
  return (
    <Page
      title={`${jobKindLabel(job.kind) === "training" ? "Training" : "Evaluation"} job ${job.id.slice(0, 8)}`}
      subtitle={
        <>
          Model <Link to={`/models/${job.modelId}`}>{job.modelName || job.modelId}</Link>
          {context.data ? (
            <>
              {" "}
              in project <Link to={`/projects/${job.projectId}`}>{context.data.project.name}</Link>
            </>
          ) : null}
        </>
      }
      actions={
        <div className="training-actions">
          <WeightsDownload job={job} />
          {canAbort ? <AbortJob job={job} onAborted={showJob} /> : null}
        </div>
      }
    >
      <div className="training-job-top">
        <Panel title="Progress">
          <JobProgress job={job} status={status} />
        </Panel>
        <Panel title={ended ? "Trusts" : job.state === JobState.QUEUED ? "Trusts (waiting for the job to start)" : `Trusts in round ${job.currentRound}`} id="trusts">
          <ParticipantsTable participants={job.participants} />
        </Panel>
      </div>
      <Panel title="Metrics">
        <JobMetrics metrics={metrics} trustCodes={trustCodes} />
      </Panel>
      <Panel title="Events">
        <EventsList events={events} trustCodes={trustCodes} />
      </Panel>
      {/* Last: the one block that grows (a row per round), so nothing below it moves. */}
      <Panel title="Rounds">
        <RoundsTable rounds={job.roundHistory} />
      </Panel>
    </Page>
  );
}

function liveWords(job: Job, status: StreamStatus): string {
  if (status.ended) return "The job has ended: this is its full record.";
  if (status.live) return "Live: events and metrics appear as they arrive.";
  if (status.error) return "";
  return isEndedJob(job.state) ? "Reading the record of this ended job…" : "Connecting to the job's live stream…";
}

/** The hub names who ended a job as an actor ("aborted by user:<id>: …"); the creator and the viewer are named by email. */
function readableReason(job: Job, me: User): string {
  const known = new Map([[me.id, me.email], ...(job.creator ? [[job.creator.userId, personLabel(job.creator)] as const] : [])]);
  return job.endReason.replace(/user:([0-9a-f-]{36})/g, (actor, id: string) => known.get(id) ?? actor);
}

function JobProgress({ job, status }: { job: Job; status: StreamStatus }) {
  const reason = readableReason(job, useUser());
  const aggregated = job.roundHistory.filter((r) => r.state === "aggregated").length;
  let now: string;
  if (job.state === JobState.QUEUED) now = job.queuePosition > 0 ? `${ordinal(job.queuePosition)} in the queue` : "waiting in the queue";
  else if (isEndedJob(job.state)) now = job.currentRound ? `ended in round ${job.currentRound} of ${job.rounds}` : "ended before it started";
  else now = `round ${job.currentRound} of ${job.rounds}`;
  return (
    <>
      <p className="training-now">
        <JobStateBadge state={job.state} /> <span>{now}</span>
      </p>
      <div className="training-rounds-bar">
        <progress className="progress" value={aggregated} max={job.rounds || 1} aria-label="Rounds aggregated" />
        <span className="hint">
          {aggregated} of {job.rounds} round{job.rounds === 1 ? "" : "s"} aggregated
        </span>
      </div>
      <LiveStatus>{liveWords(job, status)}</LiveStatus>
      <ErrorMessage error={status.error} prefix="The live stream stopped" />
      <dl className="facts">
        <dt>Kind</dt>
        <dd>{jobKindLabel(job.kind)}</dd>
        <dt>Updates needed</dt>
        <dd>
          {job.minUpdates} of {job.participants.length || job.trustIds.length} trusts per round
        </dd>
        <dt>Round timeout</dt>
        <dd>{job.roundTimeoutSeconds >= 60 ? `${Math.round(job.roundTimeoutSeconds / 60)} min` : `${job.roundTimeoutSeconds} s`}</dd>
        <dt>Created by</dt>
        <dd>{personLabel(job.creator, job.createdBy)}</dd>
        <dt>Created</dt>
        <dd>{formatTime(job.createdAt)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(job.startedAt)}</dd>
        <dt>Ended</dt>
        <dd>{formatTime(job.endedAt)}</dd>
        <dt>Why it ended</dt>
        {/* Two lines kept for it from the start, so the job ending moves nothing; the events list has the whole reason. */}
        <dd className="training-end" title={reason || undefined}>
          {job.endedAt ? reason || "no reason given" : "—"}
        </dd>
      </dl>
    </>
  );
}

function ParticipantsTable({ participants }: { participants: JobParticipant[] }) {
  return (
    <DataTable<JobParticipant>
      caption="Each trust's part in the current round"
      rows={participants}
      rowKey={(p) => p.trustId}
      empty="No trusts."
      columns={[
        { header: "Trust", cell: (p) => p.trustCode, width: "4.5rem" },
        { header: "State", cell: (p) => <ParticipantStateBadge state={p.state} />, width: "9.5rem" },
        { header: "Progress", cell: (p) => <ParticipantProgress p={p} />, width: "8rem" },
        { header: "Updates", cell: (p) => formatCount(p.updates), numeric: true, width: "6.5rem" },
        { header: "Missed", cell: (p) => formatCount(p.missed), numeric: true, width: "5.5rem" },
        { header: "Last miss reason", cell: (p) => p.lastMissReason || "—" },
      ]}
    />
  );
}

function ParticipantProgress({ p }: { p: JobParticipant }) {
  const known = (p.state === ParticipantState.TRAINING || p.state === ParticipantState.UPDATE_RECEIVED) && p.progress >= 0;
  if (!known) return <span className="hint">—</span>;
  const pct = Math.round(Math.min(1, p.progress) * 100);
  return (
    <span className="training-cell-progress">
      <progress className="progress" value={pct} max={100} aria-label={`${p.trustCode} progress`} />
      <span>{pct} %</span>
    </span>
  );
}

function RoundsTable({ rounds }: { rounds: JobRound[] }) {
  const newestFirst = useMemo(() => [...rounds].sort((a, b) => b.round - a.round), [rounds]);
  return (
    <div className="training-rounds" tabIndex={0} role="region" aria-label="Rounds, newest first">
      <DataTable<JobRound>
        caption="Rounds of the job, newest first"
        rows={newestFirst}
        rowKey={(r) => String(r.round)}
        empty="No round has started yet."
        columns={[
          { header: "Round", cell: (r) => r.round, numeric: true, width: "6rem" },
          { header: "State", cell: (r) => <RoundStateBadge state={r.state} />, width: "10rem" },
          { header: "Updates", cell: (r) => formatCount(r.updates), numeric: true, width: "7rem" },
          { header: "Missed", cell: (r) => formatCount(r.missed), numeric: true, width: "7rem" },
          { header: "Samples", cell: (r) => (r.samples ? formatCount(r.samples) : "—"), numeric: true, width: "8rem" },
          { header: "Started", cell: (r) => formatClock(r.startedAt) },
          { header: "Deadline", cell: (r) => formatClock(r.deadline) },
          { header: "Aggregated", cell: (r) => (r.aggregatedAt ? formatClock(r.aggregatedAt) : "—") },
        ]}
      />
    </div>
  );
}

function EventsList({ events, trustCodes }: { events: JobEvent[]; trustCodes: Map<string, string> }) {
  const newestFirst = useMemo(() => [...events].sort((a, b) => (a.seq < b.seq ? 1 : a.seq > b.seq ? -1 : 0)).slice(0, EVENTS_SHOWN), [events]);
  return (
    <>
      <div className="training-events" tabIndex={0} role="region" aria-label="Events, newest first">
        <DataTable<JobEvent>
          caption="Events of the job, newest first"
          rows={newestFirst}
          rowKey={(e) => String(e.seq)}
          empty="No events yet."
          columns={[
            { header: "Time", cell: (e) => formatClock(e.at), width: "7rem" },
            { header: "Kind", cell: (e) => <EventKindBadge kind={e.kind} detail={e.details["kind"]} />, width: "12rem" },
            { header: "Round", cell: (e) => e.round || "—", numeric: true, width: "5rem" },
            { header: "Trust", cell: (e) => (e.trustId ? (trustCodes.get(e.trustId) ?? e.trustId.slice(0, 8)) : "—"), width: "6rem" },
            { header: "Message", cell: (e) => e.message },
          ]}
        />
      </div>
      <p className="hint">
        {events.length > EVENTS_SHOWN ? `The newest ${EVENTS_SHOWN} of ${formatCount(events.length)} events.` : `${formatCount(events.length)} event${events.length === 1 ? "" : "s"}.`}
      </p>
    </>
  );
}

function AbortJob({ job, onAborted }: { job: Job; onAborted: (j: Job) => void }) {
  const jobs = useClient(JobService);
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await jobs.abortJob({ jobId: job.id, reason: reason.trim() });
      onAborted(r.job!);
      setOpen(false);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" className="button button-danger" onClick={() => setOpen(true)}>
        Abort job
      </button>
      <ConfirmDialog open={open} title="Abort this job?" confirmLabel={busy ? "Aborting…" : "Abort job"} danger busy={busy} onConfirm={() => void confirm()} onCancel={() => setOpen(false)}>
        <p>The trusts stop its workloads and the job ends aborted. Weights of rounds already aggregated stay available. This cannot be undone.</p>
        <Field label="Reason" hint="Recorded with the job and in the audit log (optional, at most 500 characters).">
          {(p) => <textarea {...p} rows={3} maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />}
        </Field>
        <ErrorMessage error={error} prefix="The job was not aborted" />
      </ConfirmDialog>
    </>
  );
}
