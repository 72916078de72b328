import { useEffect, useRef, useState } from "react";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { DecisionMaker, DecisionState, FreezeState, ProjectService, type TrustDecisionItem } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { trustAdminOf } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatAgo, formatCount, formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { DecisionBadge, FreezeBadge } from "./approval-words.js";
import { useEvery } from "../../ui/use-every.js";
import "./approvals.css";

/** How often the decisions are read again while a trust is freezing an approved cohort. */
const FREEZE_POLL_MS = 2_000;

/** A Trust Admin's inbox: per trust they govern, the projects waiting for its decision and the decisions taken. */
export function ApprovalsPage() {
  const trustIds = trustAdminOf(useUser());
  return (
    <Page title="Approvals" subtitle="Projects staged at your trust wait here for its decision. An approval lets the project use the trust's data; it freezes the cohort there.">
      {trustIds.length === 0 ? (
        <p className="notice">You are not a Trust Admin of any trust, so no project waits for your decision.</p>
      ) : (
        trustIds.map((id) => <TrustApprovals key={id} trustId={id} />)
      )}
    </Page>
  );
}

type Action = { kind: "approve" | "decline" | "withdraw"; item: TrustDecisionItem };

function TrustApprovals({ trustId }: { trustId: string }) {
  const trusts = useClient(TrustService);
  const projects = useClient(ProjectService);
  const trust = useLoad((signal) => trusts.getTrust({ trust: trustId }, { signal }), [trustId]);
  const decisions = useLoad((signal) => projects.listTrustDecisions({ trust: trustId }, { signal }), [trustId]);
  const [action, setAction] = useState<Action>();
  const [said, setSaid] = useState("");
  const code = trust.data?.trust?.code ?? "";
  const items = decisions.data?.items ?? [];
  const pending = items.filter((i) => i.decision?.state === DecisionState.PENDING);
  const decided = items
    .filter((i) => i.decision && i.decision.state !== DecisionState.PENDING)
    .sort((a, b) => Number(b.decision!.decidedAt?.seconds ?? 0n) - Number(a.decision!.decidedAt?.seconds ?? 0n));
  const freezing = decided.filter((i) => i.decision!.state === DecisionState.APPROVED && i.decision!.freezeState === FreezeState.PENDING);
  useEvery(FREEZE_POLL_MS, decisions.reload, freezing.length > 0);
  useFreezeNews(code, decided, setSaid);

  if (trust.error) return <ErrorMessage error={trust.error} prefix="Loading your trust" />;
  if (!trust.data) return <Loading minHeight="16rem" />;
  const trustName = trust.data.trust?.name ?? code;
  return (
    <div className="approvals-trust">
      <Panel id={`pending-${code}`} title={`Waiting for a decision at ${code}`}>
        <p className="hint">
          As Trust Admin of {trustName} you decide for {code}. Each project shows the cohort size {code} itself reported; open its query to see exactly what it asks of {code}'s data.
        </p>
        <ErrorMessage error={decisions.error} prefix="Loading the projects" />
        {!decisions.data && !decisions.error ? (
          <Loading minHeight="8rem" />
        ) : pending.length === 0 ? (
          <p className="approvals-empty">Nothing is waiting for {code}'s decision.</p>
        ) : (
          <ul className="approvals-queue">
            {pending.map((item) => (
              <PendingProject key={item.project!.id} item={item} code={code} onAction={(kind) => setAction({ kind, item })} />
            ))}
          </ul>
        )}
        <LiveStatus>{freezing.length > 0 ? `${code} is freezing the approved cohort of ${freezing.map((i) => `"${i.project!.name}"`).join(", ")}…` : said}</LiveStatus>
      </Panel>
      <Panel id={`decided-${code}`} title={`Decided at ${code}`}>
        {decisions.data ? (
          <DataTable
            caption={`Projects ${code} has decided on, newest decision first`}
            columns={decidedColumns(code, (item) => setAction({ kind: "withdraw", item }))}
            rows={decided}
            rowKey={(i) => i.project!.id}
            empty={`${code} has not decided on any project yet.`}
          />
        ) : decisions.error ? null : (
          <Loading minHeight="6rem" />
        )}
      </Panel>
      {action ? (
        <ActionDialog
          action={action}
          code={code}
          onCancel={() => setAction(undefined)}
          onDone={(message) => {
            setAction(undefined);
            setSaid(message);
            decisions.reload();
          }}
        />
      ) : null}
    </div>
  );
}

/** Says, in the live region, when a cohort this page watched freezing has frozen. */
function useFreezeNews(code: string, decided: TrustDecisionItem[], say: (m: string) => void): void {
  const before = useRef(new Map<string, FreezeState>());
  useEffect(() => {
    for (const item of decided) {
      const d = item.decision!;
      const was = before.current.get(item.project!.id);
      if (was === FreezeState.PENDING && d.freezeState !== FreezeState.PENDING) {
        const name = item.project!.name;
        say(
          d.freezeState === FreezeState.FROZEN
            ? `${code} froze the cohort of "${name}": ${formatCount(d.frozenPersonCount)} persons.`
            : d.freezeState === FreezeState.SUPPRESSED
              ? `${code} froze the cohort of "${name}"; its size is under ${code}'s threshold, so it is not shown.`
              : `${code} could not freeze the cohort of "${name}".`,
        );
      }
      before.current.set(item.project!.id, d.freezeState);
    }
  }, [code, decided, say]);
}

function PendingProject({ item, code, onAction }: { item: TrustDecisionItem; code: string; onAction: (kind: "approve" | "decline") => void }) {
  const p = item.project!;
  const d = item.decision!;
  const headingId = `project-${p.id}`;
  return (
    <li>
      <article className="approvals-item" aria-labelledby={headingId}>
        <header className="approvals-item-header">
          <h3 id={headingId}>{p.name}</h3>
          <div className="approvals-actions">
            <button type="button" className="button button-primary" onClick={() => onAction("approve")}>
              Approve<span className="visually-hidden"> {p.name}</span>
            </button>
            <button type="button" className="button" onClick={() => onAction("decline")}>
              Decline<span className="visually-hidden"> {p.name}</span>
            </button>
          </div>
        </header>
        {p.description ? <p className="approvals-description">{p.description}</p> : null}
        <dl className="approvals-facts">
          <div>
            <dt>Researcher</dt>
            <dd>{personLabel(p.owner, p.ownerId)}</dd>
          </div>
          <div>
            <dt>Staged</dt>
            <dd>
              {formatTime(d.stagedAt)} <span className="approvals-muted">({formatAgo(d.stagedAt)})</span>
            </dd>
          </div>
          <div>
            <dt>Cohort at {code}</dt>
            <dd>
              {item.cohortCount > 0n ? `${formatCount(item.cohortCount)} records` : <span title={`${code} did not report a size: it is under its threshold.`}>suppressed</span>}
            </dd>
          </div>
        </dl>
        <QueryDetails queryId={p.latestQueryId} />
      </article>
    </li>
  );
}

/** The cohort query's SQL, loaded when the reader opens it. */
function QueryDetails({ queryId }: { queryId: string }) {
  const [opened, setOpened] = useState(false);
  return (
    <details className="approvals-query" onToggle={(e) => e.currentTarget.open && setOpened(true)}>
      <summary>Cohort query (SQL)</summary>
      {opened ? <QuerySql queryId={queryId} /> : null}
    </details>
  );
}

function QuerySql({ queryId }: { queryId: string }) {
  const cohorts = useClient(CohortService);
  const query = useLoad((signal) => (queryId ? cohorts.getCohortQuery({ queryId }, { signal }) : Promise.resolve(undefined)), [queryId]);
  if (!queryId) return <p>The project has no cohort query.</p>;
  if (query.error) return <ErrorMessage error={query.error} prefix="Loading the query" />;
  if (!query.data?.query) return <Loading label="Loading the query…" minHeight="4rem" />;
  const q = query.data.query;
  return (
    <>
      {q.name ? <p className="approvals-query-name">{q.name}</p> : null}
      <pre className="sql" aria-label="Cohort query SQL">
        {q.sql.trim()}
      </pre>
    </>
  );
}

function decidedColumns(code: string, withdraw: (item: TrustDecisionItem) => void): Column<TrustDecisionItem>[] {
  return [
    {
      header: "Project",
      width: "12rem",
      cell: (i) => (
        <>
          <strong>{i.project!.name}</strong>
          <br />
          <span className="approvals-muted">{personLabel(i.project!.owner, i.project!.ownerId)}</span>
        </>
      ),
    },
    { header: "Decision", width: "8rem", cell: (i) => <DecisionBadge state={i.decision!.state} /> },
    {
      header: "Decided by",
      width: "16.5rem",
      cell: (i) => (
        <>
          {personLabel(i.decision!.decider, i.decision!.decidedBy || "—")}
          {i.decision!.decidedAs === DecisionMaker.HUB ? <span className="approvals-muted"> (hub Admin)</span> : null}
          <br />
          <span className="approvals-muted">{formatTime(i.decision!.decidedAt)}</span>
        </>
      ),
    },
    { header: "Reason", cell: (i) => i.decision!.reason || <span className="approvals-muted">none given</span> },
    {
      header: "Cohort",
      width: "11rem",
      cell: (i) => (i.decision!.freezeState === FreezeState.NOT_REQUESTED ? "—" : <FreezeBadge decision={i.decision!} />),
    },
    {
      header: "Action",
      width: "11.5rem",
      cell: (i) =>
        i.decision!.state === DecisionState.APPROVED ? (
          <button type="button" className="button button-small" onClick={() => withdraw(i)}>
            Withdraw approval<span className="visually-hidden"> of {i.project!.name} for {code}</span>
          </button>
        ) : null,
    },
  ];
}

const DIALOG: Record<Action["kind"], { title: (name: string, code: string) => string; confirm: (code: string) => string; reasonRequired: boolean }> = {
  approve: { title: (n, c) => `Approve "${n}" for ${c}?`, confirm: (c) => `Approve for ${c}`, reasonRequired: false },
  decline: { title: (n, c) => `Decline "${n}" for ${c}?`, confirm: (c) => `Decline for ${c}`, reasonRequired: true },
  withdraw: { title: (n, c) => `Withdraw ${c}'s approval of "${n}"?`, confirm: () => "Withdraw approval", reasonRequired: true },
};

function ActionDialog({ action, code, onCancel, onDone }: { action: Action; code: string; onCancel: () => void; onDone: (message: string) => void }) {
  const projects = useClient(ProjectService);
  const [reason, setReason] = useState("");
  const [missing, setMissing] = useState(false);
  const reasonRef = useRef<HTMLTextAreaElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const { kind, item } = action;
  const name = item.project!.name;
  const projectId = item.project!.id;
  const words = DIALOG[kind];
  const submit = async () => {
    const why = reason.trim();
    if (words.reasonRequired && why === "") {
      setMissing(true);
      reasonRef.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      if (kind === "withdraw") {
        await projects.withdrawApproval({ projectId, trust: code, reason: why });
        onDone(`You withdrew ${code}'s approval of "${name}".`);
      } else {
        await projects.decideProject({ projectId, trust: code, decision: kind === "approve" ? DecisionState.APPROVED : DecisionState.DECLINED, reason: why });
        onDone(kind === "approve" ? `You approved "${name}" for ${code}.` : `You declined "${name}" for ${code}.`);
      }
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <ConfirmDialog open title={words.title(name, code)} confirmLabel={words.confirm(code)} danger={kind !== "approve"} busy={busy} onConfirm={() => void submit()} onCancel={onCancel}>
      <p className="approvals-dialog-lead">
        {kind === "approve"
          ? `${code} freezes this cohort now, and the project's models may then train on it at ${code}. An approval is final: it can only be withdrawn later.`
          : kind === "decline"
            ? `${code} takes no part in the project. The researcher sees your reason.`
            : `${code} takes no more part in the project: no new jobs run there, and the research copies of images ${code} imported for it are deleted. Jobs already running finish. This is final.`}
      </p>
      <Field
        label={words.reasonRequired ? "Reason" : "Reason (optional)"}
        hint={kind === "approve" ? "Recorded with the decision and in the audit log, e.g. the ethics approval reference." : "Recorded with the decision and in the audit log."}
        error={missing ? `Say why you ${kind === "withdraw" ? "withdraw the approval" : "decline"}.` : undefined}
      >
        {(p) => (
          <textarea
            {...p}
            ref={reasonRef}
            className="approvals-reason"
            maxLength={2000}
            aria-required={words.reasonRequired}
            value={reason}
            onChange={(e) => {
              setReason(e.target.value);
              setMissing(false);
            }}
          />
        )}
      </Field>
      <ErrorMessage error={error} />
    </ConfirmDialog>
  );
}
