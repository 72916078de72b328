import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { CohortService, TrustAnswerState, type CohortQuery, type TrustCohortAnswer } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService, ProjectStatus } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { isAdmin } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { ConfirmedActionButton } from "../../ui/confirm.js";
import { formatCount, formatTime } from "../../ui/format.js";
import { ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { useStream } from "../../ui/use-stream.js";
import { AnswerBadge, answerWords, hasAnswered, readAnswerError } from "./answer-words.js";
import { ColumnCharts } from "./column-charts.js";
import type { EditorStart } from "./query-editor.js";
import "./cohorts.css";

/** A cohort query as the trusts answer it, followed live (WatchCohortQuery) until every trust has. */
export function QueryResultsPage({ projectId, queryId }: { projectId: string; queryId: string }) {
  const user = useUser();
  const projects = useClient(ProjectService);
  const cohorts = useClient(CohortService);
  const project = useLoad(async (signal) => (await projects.getProject({ projectId }, { signal })).project!, [projectId]);
  const [query, setQuery] = useState<CohortQuery>();
  const stream = useStream(
    (signal) => cohorts.watchCohortQuery({ queryId }, { signal }),
    (m) => m.query && setQuery(m.query),
    [queryId],
  );
  const p = project.data;
  const canEdit = p !== undefined && (isAdmin(user) || p.ownerId === user.id);
  const mayStage = canEdit && p.status === ProjectStatus.UNSTAGED && p.latestQueryId === queryId;

  if (!query) {
    return (
      <Page title="Cohort query">
        <ErrorMessage error={stream.error} prefix="Could not follow the query" />
        {stream.error ? null : <Loading label="Loading the query…" minHeight="24rem" />}
      </Page>
    );
  }
  const answered = query.answers.filter((a) => hasAnswered(a.state));
  const usable = query.answers.filter((a) => a.state === TrustAnswerState.OK);
  const offline = query.answers.filter((a) => a.state === TrustAnswerState.OFFLINE).map((a) => a.trustCode);
  const start: EditorStart = { name: query.name, sql: query.sql };
  return (
    <Page
      title={query.name || "Cohort query"}
      subtitle={
        <>
          Cohort query of <Link to={`/projects/${projectId}`}>{p?.name ?? "the project"}</Link>, submitted {formatTime(query.createdAt)}.
        </>
      }
      actions={
        <>
          {canEdit && p.status === ProjectStatus.UNSTAGED ? (
            <Link className="button" to={`/projects/${projectId}/cohorts/new`} state={start}>
              Edit as a new query
            </Link>
          ) : null}
          {mayStage && usable.length > 0 ? <StageAction projectId={projectId} trusts={usable.map((a) => a.trustCode)} /> : null}
        </>
      }
    >
      <div className="cohorts-top">
        <Panel title="Summary">
          <LiveStatus>
            {query.complete
              ? `All ${query.answers.length} trusts answered.`
              : `${answered.length} of ${query.answers.length} trusts answered${offline.length ? `; waiting for ${offline.join(", ")} (offline)` : ""}${stream.live ? "…" : ". Reconnecting…"}`}
          </LiveStatus>
          <dl className="facts">
            <dt>Total records</dt>
            <dd className="cohorts-total">{answered.length ? formatCount(query.totalRecordCount) : "—"}</dd>
            <dt>Counted at</dt>
            <dd>{usable.length ? usable.map((a) => a.trustCode).join(", ") : query.complete ? "no trust" : "no trust yet"}</dd>
            <dt>All trusts answered</dt>
            <dd>{query.complete ? "yes" : "not yet"}</dd>
          </dl>
          <p className="hint">The total adds up trusts that answered with a count. Each trust suppresses cohorts and categories smaller than its threshold.</p>
          <ErrorMessage error={stream.error} prefix="Stopped following the query" />
        </Panel>
        <Panel title="SQL">
          <pre className="sql cohorts-sql-view">{query.sql}</pre>
        </Panel>
      </div>
      <Panel title="Answers by trust">
        <div className="cohorts-cards">
          {query.answers.map((a) => (
            <AnswerCard key={a.trustId} answer={a} />
          ))}
        </div>
      </Panel>
    </Page>
  );
}

/** One trust's answer; the card's size is fixed, so answers arriving never move the page. */
function AnswerCard({ answer: a }: { answer: TrustCohortAnswer }) {
  const headingId = `answer-${a.trustId}`;
  const error = a.state === TrustAnswerState.ERROR ? readAnswerError(a.error) : undefined;
  return (
    <section className="cohorts-card" aria-labelledby={headingId} data-trust={a.trustCode} data-state={answerWords(a.state)}>
      <header className="cohorts-card-header">
        <h3 id={headingId}>{a.trustCode}</h3>
        <AnswerBadge state={a.state} />
      </header>
      <dl className="facts cohorts-card-facts">
        <dt>Records</dt>
        <dd className="cohorts-count">{recordsInWords(a)}</dd>
        <dt>Threshold</dt>
        <dd>{a.threshold ? formatCount(a.threshold) : "—"}</dd>
        <dt>Answered</dt>
        <dd>{a.answeredAt ? formatTime(a.answeredAt) : "—"}</dd>
      </dl>
      {/* The body scrolls within the card's fixed height; focusable so that a keyboard can scroll it. */}
      <div className="cohorts-card-body" tabIndex={0} role="group" aria-label={`Statistics from ${a.trustCode}`}>
        {error ? (
          <div className="cohorts-card-error">
            <p className="error">{error.summary}</p>
            {error.rule ? (
              <p>
                Rule <code>{error.rule}</code>
              </p>
            ) : null}
            {error.detail ? <p>{error.detail}</p> : null}
          </div>
        ) : a.state === TrustAnswerState.OK ? (
          <ColumnCharts columns={a.columns} threshold={a.threshold} />
        ) : (
          <p className="cohorts-card-waiting">{waitingWords(a.state)}</p>
        )}
      </div>
    </section>
  );
}

function recordsInWords(a: TrustCohortAnswer): string {
  switch (a.state) {
    case TrustAnswerState.OK:
      return formatCount(a.recordCount);
    case TrustAnswerState.SUPPRESSED:
      return a.threshold ? `suppressed (fewer than ${formatCount(a.threshold)}, or none)` : "suppressed";
    case TrustAnswerState.EMPTY:
      return "none";
    default:
      return "—";
  }
}

function waitingWords(s: TrustAnswerState): string {
  switch (s) {
    case TrustAnswerState.PENDING:
      return "Waiting for the trust's answer…";
    case TrustAnswerState.OFFLINE:
      return "The trust is offline; it answers when its gateway reconnects.";
    case TrustAnswerState.SUPPRESSED:
      return "The cohort is below the trust's threshold: it shows no statistics.";
    case TrustAnswerState.EMPTY:
      return "No records match at this trust.";
    default:
      return "No statistics.";
  }
}

/** Stages the project at the trusts whose answer to this (the latest) query is usable. */
function StageAction({ projectId, trusts }: { projectId: string; trusts: string[] }) {
  const projects = useClient(ProjectService);
  const navigate = useNavigate();
  return (
    <ConfirmedActionButton
      label="Stage at trusts that answered"
      tone="primary"
      title={`Stage the project at ${trusts.join(", ")}?`}
      confirmLabel={`Stage at ${trusts.join(", ")}`}
      errorPrefix="Could not stage the project"
      action={() => projects.stageProject({ projectId, trusts }).then(() => navigate(`/projects/${projectId}`))}
    >
      <p>Their governance teams decide on the project and this query. The project is read-only until you unstage it.</p>
    </ConfirmedActionButton>
  );
}
