import { useState } from "react";
import { Link, useParams } from "react-router";
import { CohortService, TrustAnswerState, type CohortQuery } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionState, FreezeState, ProjectService, ProjectStatus, type Project, type TrustDecision } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { LinkStatus, TrustService, type Trust } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { isAdmin } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { DataTable } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatCount, formatTime, personLabel } from "../../ui/format.js";
import { Badge, ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { ShowMoreButton, useShowMore } from "../../ui/show-more.js";
import { useEvery } from "../../ui/use-every.js";
import { useLoad } from "../../ui/use-load.js";
import { AnswerBadge } from "../cohorts/answer-words.js";
import { ProjectModels } from "../training/project-models.js";
import { DeleteProjectButton, ProjectDetails } from "./project-details.js";
import { ProjectImaging } from "./project-imaging.js";
import { DecisionBadge, FreezeBadge, ProjectStatusBadge } from "./project-words.js";
import "./projects.css";

const awaitingTrusts = (p: Project) =>
  p.decisions.some((d) => d.state === DecisionState.PENDING || (d.state === DecisionState.APPROVED && d.freezeState === FreezeState.PENDING));

/** One project: details, members, staging at trusts with each trust's decision, cohort queries and models. */
export function ProjectPage() {
  const { projectId = "" } = useParams();
  const user = useUser();
  const projects = useClient(ProjectService);
  const loaded = useLoad(async (signal) => (await projects.getProject({ projectId }, { signal })).project!, [projectId]);
  // Decisions and freezes change at the trusts without a stream to watch: read again while one is awaited.
  useEvery(5_000, loaded.reload, loaded.data !== undefined && awaitingTrusts(loaded.data));
  const project = loaded.data;
  if (!project) {
    return (
      <Page title="Project">
        <ErrorMessage error={loaded.error} prefix="Could not load the project" />
        {loaded.error ? null : <Loading label="Loading the project…" minHeight="20rem" />}
      </Page>
    );
  }
  const canEdit = isAdmin(user) || project.ownerId === user.id;
  const unstaged = project.status === ProjectStatus.UNSTAGED;
  return (
    <Page
      title={project.name}
      subtitle={
        <>
          <ProjectStatusBadge status={project.status} /> Project owned by {personLabel(project.owner, project.ownerId || "—")}
        </>
      }
      actions={
        canEdit ? (
          <>
            {unstaged ? (
              <Link className="button button-primary" to={`/projects/${project.id}/cohorts/new`}>
                New cohort query
              </Link>
            ) : null}
            <DeleteProjectButton project={project} />
          </>
        ) : null
      }
    >
      <ErrorMessage error={loaded.error} prefix="Could not refresh the project" />
      <div className="grid-2">
        <ProjectDetails project={project} canEdit={canEdit} onChanged={loaded.reload} />
        <MembersPanel project={project} canEdit={canEdit} onChanged={loaded.reload} />
      </div>
      <CohortQueriesAndTrusts project={project} canEdit={canEdit} onChanged={loaded.reload} />
      <ProjectImaging projectId={project.id} canEdit={canEdit} />
      <ProjectModels projectId={project.id} canEdit={canEdit} />
    </Page>
  );
}

function MembersPanel({ project, canEdit, onChanged }: { project: Project; canEdit: boolean; onChanged: () => void }) {
  const projects = useClient(ProjectService);
  const [email, setEmail] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const change = (call: Promise<unknown>, after?: () => void) => {
    setBusy(true);
    setError(undefined);
    call.then(
      () => {
        after?.();
        onChanged();
      },
      setError,
    ).finally(() => setBusy(false));
  };
  const members = project.memberIds.map((id, i) => ({ id, person: project.members[i] }));
  return (
    <Panel title="Members">
      {members.length === 0 ? (
        <p className="projects-muted">No members besides the owner.</p>
      ) : (
        <ul className="projects-members" aria-label="Members">
          {members.map(({ id, person }) => (
            <li key={id}>
              <span>{personLabel(person, id)}</span>
              {canEdit ? (
                <button type="button" className="button button-small" disabled={busy} onClick={() => change(projects.removeProjectMember({ projectId: project.id, user: id }))}>
                  Remove<span className="visually-hidden"> {personLabel(person, id)}</span>
                </button>
              ) : null}
            </li>
          ))}
        </ul>
      )}
      {canEdit ? (
        <form
          className="projects-add-member"
          onSubmit={(e) => {
            e.preventDefault();
            change(projects.addProjectMember({ projectId: project.id, user: email.trim() }), () => setEmail(""));
          }}
        >
          <Field label="Email of a person to add">
            {(p) => <input {...p} type="email" required autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />}
          </Field>
          <button type="submit" className="button" disabled={busy}>
            Add member
          </button>
        </form>
      ) : (
        <p className="hint">Only the owner or an Admin can change the members.</p>
      )}
      <ErrorMessage error={error} prefix="Could not change the members" />
    </Panel>
  );
}

const PAGE = 20;

/**
 * The project's cohort queries, and its trusts with each one's latest answer and decision: staging needs
 * the latest query's answers, so both come from the same ListCohortQueries call.
 */
function CohortQueriesAndTrusts({ project, canEdit, onChanged }: { project: Project; canEdit: boolean; onChanged: () => void }) {
  const cohorts = useClient(CohortService);
  const list = useShowMore(
    async (page, signal) => {
      const res = await cohorts.listCohortQueries({ projectId: project.id, page }, { signal });
      return { rows: res.queries, nextPageToken: res.page?.nextPageToken ?? "" };
    },
    [project.id, project.latestQueryId],
    PAGE,
  );
  useEvery(10_000, list.reload, list.rows?.some((q) => !q.complete) ?? false);
  const queries = list.rows ?? [];
  const latest = queries.find((q) => q.id === project.latestQueryId);
  return (
    <>
      <TrustsPanel project={project} canEdit={canEdit} latest={latest} onChanged={onChanged} />
      <Panel title="Cohort queries">
        <ErrorMessage error={list.error} prefix="Could not list the cohort queries" />
        {list.rows ? (
          <>
            <DataTable<CohortQuery>
              caption="Cohort queries of this project, newest first"
              rows={queries}
              rowKey={(q) => q.id}
              empty={canEdit ? "No cohort queries yet. Write one with “New cohort query” at the top of the page." : "No cohort queries yet."}
              columns={[
                {
                  header: "Name",
                  width: "34%",
                  cell: (q) => (
                    <>
                      <Link to={`/projects/${project.id}/cohorts/${q.id}`}>{q.name || "cohort query"}</Link>
                      {q.id === project.latestQueryId ? (
                        <>
                          {" "}
                          <Badge tone="info">latest</Badge>
                        </>
                      ) : null}
                    </>
                  ),
                },
                { header: "Submitted", width: "18%", cell: (q) => formatTime(q.createdAt) },
                { header: "Records", width: "16%", numeric: true, cell: (q) => formatCount(q.totalRecordCount) },
                { header: "Answers", width: "32%", cell: (q) => <AnswersSummary query={q} /> },
              ]}
            />
            <ShowMoreButton list={list} label="Show more cohort queries" className="projects-more" />
          </>
        ) : list.error ? null : (
          <Loading label="Loading cohort queries…" />
        )}
      </Panel>
    </>
  );
}

/** Each trust's answer to a query, in words. */
function AnswersSummary({ query }: { query: CohortQuery }) {
  return (
    <ul className="projects-decisions" aria-label={`Answers to ${query.name || "the query"}`}>
      {query.answers.map((a) => (
        <li key={a.trustId}>
          <span>{a.trustCode}</span> <AnswerBadge state={a.state} />
        </li>
      ))}
    </ul>
  );
}

interface TrustRow {
  trustId: string;
  code: string;
  trust: Trust | undefined;
  decision: TrustDecision | undefined;
}

const LINK: Record<LinkStatus, string> = {
  [LinkStatus.UNSPECIFIED]: "link unknown",
  [LinkStatus.ONLINE]: "online",
  [LinkStatus.OFFLINE]: "offline",
  [LinkStatus.NEVER_CONNECTED]: "never connected",
};

function TrustsPanel({ project, canEdit, latest, onChanged }: { project: Project; canEdit: boolean; latest: CohortQuery | undefined; onChanged: () => void }) {
  const trustsClient = useClient(TrustService);
  const projects = useClient(ProjectService);
  const trusts = useLoad((signal) => trustsClient.listTrusts({ page: { pageSize: 500 } }, { signal }), []);
  const [chosen, setChosen] = useState<ReadonlySet<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [confirmUnstage, setConfirmUnstage] = useState(false);
  const staging = canEdit && project.status === ProjectStatus.UNSTAGED;

  const rows: TrustRow[] = (trusts.data?.trusts ?? []).map((t) => ({ trustId: t.id, code: t.code, trust: t, decision: project.decisions.find((d) => d.trustId === t.id) }));
  for (const d of project.decisions) {
    if (!rows.some((r) => r.trustId === d.trustId)) rows.push({ trustId: d.trustId, code: d.trustCode, trust: undefined, decision: d });
  }
  const answerAt = (trustId: string) => latest?.answers.find((a) => a.trustId === trustId);
  const chosenCodes = rows.filter((r) => chosen.has(r.trustId)).map((r) => r.code);

  const act = (call: Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    call.then(() => {
      setChosen(new Set());
      onChanged();
    }, setError).finally(() => {
      setBusy(false);
      setConfirmUnstage(false);
    });
  };

  return (
    <Panel title="Trusts and decisions">
      <ErrorMessage error={trusts.error} prefix="Could not list the trusts" />
      {trusts.data ? (
        <DataTable<TrustRow>
          caption="Trusts: the latest cohort answer, and each trust's decision on this project"
          rows={rows}
          rowKey={(r) => r.trustId}
          empty="No trusts are registered."
          columns={[
            {
              header: "Trust",
              width: "25%",
              cell: (r) => (
                <>
                  {staging && r.trust ? (
                    <label className="checkbox">
                      <input
                        type="checkbox"
                        checked={chosen.has(r.trustId)}
                        onChange={(e) => {
                          const next = new Set(chosen);
                          if (e.target.checked) next.add(r.trustId);
                          else next.delete(r.trustId);
                          setChosen(next);
                        }}
                      />
                      <span>
                        <span className="visually-hidden">Stage at </span>
                        <span className="projects-trust-name">{r.trust.name}</span> ({r.code})
                      </span>
                    </label>
                  ) : (
                    <span>
                      <span className="projects-trust-name">{r.trust?.name ?? r.code}</span> ({r.code})
                    </span>
                  )}
                  <p className="projects-small">{r.trust ? LINK[r.trust.linkStatus] : "disabled"}</p>
                </>
              ),
            },
            {
              header: "Latest answer",
              width: "15%",
              cell: (r) => {
                const a = answerAt(r.trustId);
                if (!a) return <span className="projects-muted">no query</span>;
                return (
                  <>
                    <AnswerBadge state={a.state} />
                    {a.state === TrustAnswerState.OK ? <p className="projects-small">{formatCount(a.recordCount)} records</p> : null}
                  </>
                );
              },
            },
            {
              header: "Decision",
              width: "21%",
              cell: (r) =>
                r.decision ? (
                  <>
                    <DecisionBadge state={r.decision.state} />
                    {r.decision.state !== DecisionState.PENDING ? (
                      <p className="projects-small">
                        by {personLabel(r.decision.decider, r.decision.decidedBy || "—")}
                        {r.decision.decidedAt ? `, ${formatTime(r.decision.decidedAt)}` : ""}
                      </p>
                    ) : r.decision.stagedAt ? (
                      <p className="projects-small">asked {formatTime(r.decision.stagedAt)}</p>
                    ) : null}
                  </>
                ) : (
                  <span className="projects-muted">not staged</span>
                ),
            },
            { header: "Reason", width: "20%", cell: (r) => r.decision?.reason || <span className="projects-muted">—</span> },
            {
              header: "Cohort",
              width: "19%",
              cell: (r) =>
                r.decision && r.decision.freezeState !== FreezeState.UNSPECIFIED && r.decision.freezeState !== FreezeState.NOT_REQUESTED ? (
                  <FreezeBadge decision={r.decision} />
                ) : (
                  <span className="projects-muted">not frozen</span>
                ),
            },
          ]}
        />
      ) : trusts.error ? null : (
        <Loading label="Loading trusts…" />
      )}
      {staging ? (
        <div className="projects-stage-bar">
          <button type="button" className="button button-primary" disabled={busy || chosenCodes.length === 0} onClick={() => act(projects.stageProject({ projectId: project.id, trusts: chosenCodes }))}>
            {chosenCodes.length === 0 ? "Stage" : `Stage at ${chosenCodes.join(", ")}`}
          </button>
          <p className="hint">
            {latest
              ? "Choose trusts whose latest answer is usable. Staging asks their governance teams to decide; the project is read-only meanwhile."
              : "Run a cohort query first: the trusts decide on the project's latest query."}
          </p>
        </div>
      ) : null}
      {canEdit && project.status === ProjectStatus.STAGED ? (
        <div className="projects-stage-bar">
          <button type="button" className="button" disabled={busy} onClick={() => setConfirmUnstage(true)}>
            Unstage
          </button>
          <p className="hint">Unstaging withdraws the pending requests so that you can change the project and query again.</p>
        </div>
      ) : null}
      <ErrorMessage error={error} prefix="Could not change the staging" />
      <ConfirmDialog
        open={confirmUnstage}
        title="Unstage the project?"
        confirmLabel="Unstage"
        busy={busy}
        onCancel={() => setConfirmUnstage(false)}
        onConfirm={() => act(projects.unstageProject({ projectId: project.id }))}
      >
        <p>Pending requests to the trusts are dropped; decisions already taken stay recorded.</p>
      </ConfirmDialog>
    </Panel>
  );
}
