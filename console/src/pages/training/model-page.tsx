import { useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { DecisionState, FreezeState, ProjectService, type Project, type TrustDecision } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { JobKind, JobService, JobState, ModelService, type Job, type Model } from "@flip/gen/flip/hub/v1/training_pb.js";
import { errorText, invalidField } from "../../api/errors.js";
import { useClient, useUser } from "../../session/session-context.js";
import { Field } from "../../ui/field.js";
import { formatBytes, formatCount, formatTime, personLabel } from "../../ui/format.js";
import { Badge, ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { isEndedJob, newIdempotencyKey } from "./job-labels.js";
import { JobsTable } from "./jobs-table.js";
import { mayRunJobs } from "./model-access.js";
import { useEvery } from "../../ui/use-every.js";
import { useFormProblems } from "../../ui/use-form-problems.js";
import "./training.css";

/** A model: what it is, its config and files, its jobs, and (for those who may) a form to start one. */
export function ModelPage() {
  const { modelId = "" } = useParams();
  const user = useUser();
  const models = useClient(ModelService);
  const projects = useClient(ProjectService);
  const jobsClient = useClient(JobService);
  const model = useLoad((signal) => models.getModel({ modelId }, { signal }).then((r) => r.model!), [modelId]);
  const projectId = model.data?.projectId;
  const project = useLoad(async (signal) => (projectId ? (await projects.getProject({ projectId }, { signal })).project : undefined), [projectId]);
  const jobs = useLoad((signal) => jobsClient.listJobs({ modelId, page: { pageSize: 100 } }, { signal }).then((r) => r.jobs), [modelId]);
  const liveJob = jobs.data?.find((j) => !isEndedJob(j.state));
  useEvery(5_000, jobs.reload, Boolean(liveJob) && !jobs.loading);

  const m = model.data;
  if (!m) {
    return (
      <Page title="Model">
        {model.error ? <ErrorMessage error={model.error} prefix="Could not load the model" /> : <Loading label="Loading the model…" minHeight="20rem" />}
      </Page>
    );
  }
  const p = project.data;
  const canRun = mayRunJobs(user, m, p);
  return (
    <Page
      title={m.name}
      subtitle={
        <>
          Model in project {p ? <Link to={`/projects/${p.id}`}>{p.name}</Link> : <Link to={`/projects/${m.projectId}`}>…</Link>}
          {m.deleted ? (
            <>
              {" "}
              <Badge tone="warn">deleted</Badge>
            </>
          ) : null}
        </>
      }
    >
      <ErrorMessage error={project.error} prefix="Could not load the project" />
      {canRun && p ? (
        <div className="training-model-top">
          <div>
            <Panel title="Details">
              <ModelFacts model={m} />
            </Panel>
            <ConfigPanel model={m} />
          </div>
          <StartJobPanel model={m} project={p} liveJob={liveJob} />
        </div>
      ) : (
        <div className="grid-2">
          <Panel title="Details">
            <ModelFacts model={m} />
          </Panel>
          <ConfigPanel model={m} />
        </div>
      )}
      <Panel title="Jobs">
        <ErrorMessage error={jobs.error} prefix="Could not list the model's jobs" />
        {jobs.data ? (
          <JobsTable jobs={jobs.data} caption={`Jobs of ${m.name}`} empty={canRun ? "No jobs yet. Start one above." : "No jobs yet."} withModel={false} />
        ) : jobs.error ? null : (
          <Loading label="Loading jobs…" />
        )}
      </Panel>
    </Page>
  );
}

function ConfigPanel({ model }: { model: Model }) {
  return (
    <Panel title="Config">
      <pre className="sql training-config" tabIndex={0} aria-label="Config (JSON)">
        {prettyJson(model.configJson)}
      </pre>
    </Panel>
  );
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text || "{}"), null, 2);
  } catch {
    return text;
  }
}

function ModelFacts({ model: m }: { model: Model }) {
  return (
    <dl className="facts">
      <dt>Image</dt>
      <dd>
        <code>{m.image}</code>
      </dd>
      <dt>Owner</dt>
      <dd>{personLabel(m.owner, m.ownerId)}</dd>
      <dt>Created</dt>
      <dd>{formatTime(m.createdAt)}</dd>
      <dt>Description</dt>
      <dd>{m.description || "—"}</dd>
      <dt>Files</dt>
      <dd>
        {m.filePaths.length ? (
          <>
            <ul className="training-file-list" aria-label="Files of the model">
              {m.filePaths.map((f) => (
                <li key={f}>
                  <code>{f}</code>
                </li>
              ))}
            </ul>
            <span className="hint">
              {m.filePaths.length} file{m.filePaths.length === 1 ? "" : "s"}, {formatBytes(m.bundleSizeBytes)} packed; SHA-256 <code title={m.bundleSha256}>{m.bundleSha256.slice(0, 16)}…</code>
            </span>
          </>
        ) : (
          "none (the image holds everything)"
        )}
      </dd>
      <dt>Initial weights</dt>
      <dd>{m.initialWeightsArtifactId ? "given (safetensors)" : "none: the workload initialises them"}</dd>
    </dl>
  );
}

/** Why a trust cannot take part in a job yet; undefined when it can (approved, cohort frozen). */
function notReady(d: TrustDecision): string | undefined {
  switch (d.state) {
    case DecisionState.APPROVED:
      break;
    case DecisionState.DECLINED:
      return "declined the project";
    case DecisionState.WITHDRAWN:
      return "withdrew its approval";
    default:
      return "has not approved the project yet";
  }
  switch (d.freezeState) {
    case FreezeState.FROZEN:
      return undefined;
    case FreezeState.PENDING:
      return "approved; still freezing its cohort";
    case FreezeState.SUPPRESSED:
      return "approved, but its cohort is too small to use (suppressed)";
    case FreezeState.FAILED:
      return "approved, but freezing its cohort failed";
    default:
      return "approved; its cohort is not frozen";
  }
}

type JobField = "trusts" | "rounds" | "minUpdates" | "timeout";
const HUB_JOB_FIELDS: Record<string, JobField> = { trusts: "trusts", rounds: "rounds", min_updates: "minUpdates", round_timeout_seconds: "timeout" };

function StartJobPanel({ model, project, liveJob }: { model: Model; project: Project; liveJob: Job | undefined }) {
  const jobs = useClient(JobService);
  const navigate = useNavigate();
  const ready = project.decisions.filter((d) => !notReady(d));
  const [chosen, setChosen] = useState<Set<string>>(() => new Set(ready.map((d) => d.trustCode)));
  const [kind, setKind] = useState<JobKind>(JobKind.TRAIN);
  const [rounds, setRounds] = useState("3");
  const [minUpdates, setMinUpdates] = useState(0);
  const [timeoutMin, setTimeoutMin] = useState("60");
  const form = useFormProblems<JobField>();
  const [busy, setBusy] = useState(false);
  const evaluate = kind === JobKind.EVALUATE;
  const trusts = ready.filter((d) => chosen.has(d.trustCode)).map((d) => d.trustCode);
  const idempotencyKey = useMemo(() => newIdempotencyKey(), [model.id, chosen, kind, rounds, minUpdates, timeoutMin]);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    const r = Number(rounds);
    const t = Number(timeoutMin);
    const fine = form.check({
      trusts: trusts.length ? undefined : "Choose at least one trust.",
      rounds: evaluate || (Number.isInteger(r) && r >= 1 && r <= 1000) ? undefined : "A whole number from 1 to 1000.",
      timeout: Number.isFinite(t) && t * 60 >= 10 && t <= 7 * 24 * 60 ? undefined : "From 1 minute to 7 days (10080 minutes).",
    });
    if (!fine) return;
    setBusy(true);
    try {
      const { job } = await jobs.createJob({
        modelId: model.id,
        trusts,
        kind,
        rounds: evaluate ? 0 : r,
        minUpdates: minUpdates > trusts.length ? 0 : minUpdates,
        roundTimeoutSeconds: Math.round(t * 60),
        idempotencyKey,
      });
      navigate(`/jobs/${job!.id}`);
    } catch (e) {
      const named = invalidField(e);
      const field = named ? HUB_JOB_FIELDS[named] : undefined;
      form.refuse(e, field && named ? { field, message: errorText(e).slice(named.length).replace(/^:\s*/, "") } : undefined);
      setBusy(false);
    }
  };

  const action = evaluate ? "Start evaluation" : "Start training";
  return (
    <Panel title="Start training">
      <form ref={form.formRef} className="form training-start" onSubmit={(e) => void submit(e)} noValidate>
        {project.decisions.length === 0 ? <p className="notice">The project is not staged at any trust yet, so no trust can train it.</p> : null}
        <fieldset aria-describedby={form.problems.trusts ? "training-trusts-error" : undefined}>
          <legend>Trusts</legend>
          {project.decisions.map((d) => {
            const why = notReady(d);
            const hintId = `training-trust-${d.trustId}`;
            return (
              <div key={d.trustId} className="checkbox">
                <input
                  id={`${hintId}-box`}
                  type="checkbox"
                  disabled={Boolean(why)}
                  checked={!why && chosen.has(d.trustCode)}
                  aria-describedby={hintId}
                  onChange={(e) =>
                    setChosen((old) => {
                      const next = new Set(old);
                      if (e.target.checked) next.add(d.trustCode);
                      else next.delete(d.trustCode);
                      return next;
                    })
                  }
                />
                <label htmlFor={`${hintId}-box`}>{d.trustCode}</label>
                <span id={hintId} className="hint">
                  {why ?? (d.frozenPersonCount > 0n ? `cohort frozen: ${formatCount(d.frozenPersonCount)} people` : "cohort frozen")}
                </span>
              </div>
            );
          })}
          {form.problems.trusts ? (
            <p id="training-trusts-error" className="field-error">
              {form.problems.trusts}
            </p>
          ) : null}
        </fieldset>
        <fieldset>
          <legend>Kind</legend>
          <label className="checkbox">
            <input type="radio" name="training-kind" checked={!evaluate} onChange={() => setKind(JobKind.TRAIN)} />
            Train: rounds of local training, averaged at the hub
          </label>
          <label className="checkbox">
            <input type="radio" name="training-kind" checked={evaluate} onChange={() => setKind(JobKind.EVALUATE)} />
            Evaluate: one round in which each trust scores the model
          </label>
        </fieldset>
        <div className="form-row">
          <Field label="Rounds" error={form.problems.rounds} hint={evaluate ? "An evaluation has one round." : "1 to 1000"}>
            {(p) => <input {...p} type="number" min={1} max={1000} step={1} className="training-number" disabled={evaluate} value={evaluate ? "1" : rounds} onChange={(e) => setRounds(e.target.value)} />}
          </Field>
          <Field label="Updates needed per round" error={form.problems.minUpdates} hint="A round closes once this many trusts sent theirs.">
            {(p) => (
              <select {...p} value={minUpdates > trusts.length ? 0 : minUpdates} onChange={(e) => setMinUpdates(Number(e.target.value))}>
                <option value={0}>All chosen trusts ({trusts.length})</option>
                {Array.from({ length: Math.max(0, trusts.length - 1) }, (_, i) => (
                  <option key={i + 1} value={i + 1}>
                    {i + 1} of {trusts.length}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="Round timeout (minutes)" error={form.problems.timeout} hint="How long a round waits for updates.">
            {(p) => <input {...p} type="number" min={1} max={10080} step={1} className="training-number" value={timeoutMin} onChange={(e) => setTimeoutMin(e.target.value)} />}
          </Field>
        </div>
        {liveJob ? (
          <p className="notice">
            This model has a {liveJob.state === JobState.QUEUED ? "queued" : "running"} job (<Link to={`/jobs/${liveJob.id}`}>open it</Link>); a new one can start once it ends.
          </p>
        ) : null}
        <ErrorMessage error={form.formError} prefix="The job was not started" />
        <div className="form-row">
          <button type="submit" className="button button-primary" disabled={busy || Boolean(liveJob) || ready.length === 0}>
            {busy ? "Starting…" : action}
          </button>
        </div>
      </form>
    </Panel>
  );
}
