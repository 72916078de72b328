import { useSearchParams } from "react-router";
import { TrustService, ActivityOutcome, type TrustActivity } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { isAdmin, trustAdminOf } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatAgo, formatCount, formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { PagerControls, usePager } from "../../ui/pager.js";
import { useLoad } from "../../ui/use-load.js";
import { DecisionBadge, kindWords, LEDGER_KINDS, OutcomeBadge } from "./approval-words.js";
import { useEvery } from "../../ui/use-every.js";
import "./approvals.css";

const PAGE_SIZE = 25;
/** How often the newest page is read again while work on it is still in progress at the trust. */
const IN_PROGRESS_POLL_MS = 5_000;

/** A kind as the address names it ("cohort_query"). */
const kindParam = (k: TaskKind): string => TaskKind[k].toLowerCase();

/**
 * The trust's own ledger: every piece of work the hub sent it (cohort queries, freezes, training rounds,
 * imaging), what came of it, who asked, and the decision it ran under. For the trust's Trust Admins (and Admin).
 */
export function LedgerPage() {
  const user = useUser();
  const trusts = useClient(TrustService);
  const all = useLoad((signal) => trusts.listTrusts({ page: { pageSize: 500 } }, { signal }), []);
  const governed = new Set(trustAdminOf(user));
  const mine = (all.data?.trusts ?? []).filter((t) => isAdmin(user) || governed.has(t.id));
  const [params, setParams] = useSearchParams();
  const trustCode = mine.some((t) => t.code === params.get("trust")) ? params.get("trust")! : (mine[0]?.code ?? "");
  const kind = LEDGER_KINDS.find((k) => kindParam(k) === params.get("kind"));
  const choose = (key: "trust" | "kind", value: string) =>
    setParams(
      (p) => {
        const next = new URLSearchParams(p);
        if (value) next.set(key, value);
        else next.delete(key);
        return next;
      },
      { replace: true },
    );

  return (
    <Page title="Trust ledger" subtitle="What the hub sent to your trust and what came of it: cohort queries, cohort freezes, training rounds and imaging. Outcomes and counts only; no patient data ever leaves the trust.">
      <ErrorMessage error={all.error} prefix="Loading your trusts" />
      {!all.data && !all.error ? (
        <Loading minHeight="20rem" />
      ) : all.data && mine.length === 0 ? (
        <p className="notice">You are not a Trust Admin of any trust, so there is no ledger for you to read.</p>
      ) : (
        <>
          <form className="form-row approvals-ledger-filters" onSubmit={(e) => e.preventDefault()} aria-label="Which entries">
            {mine.length > 1 ? (
              <Field label="Trust">
                {(p) => (
                  <select {...p} value={trustCode} onChange={(e) => choose("trust", e.target.value)}>
                    {mine.map((t) => (
                      <option key={t.id} value={t.code}>
                        {t.code} — {t.name}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
            ) : null}
            <Field label="Kind of work">
              {(p) => (
                <select {...p} value={kind === undefined ? "" : kindParam(kind)} onChange={(e) => choose("kind", e.target.value)}>
                  <option value="">All kinds</option>
                  {LEDGER_KINDS.map((k) => (
                    <option key={k} value={kindParam(k)}>
                      {kindWords(k)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          </form>
          {trustCode ? <TrustLedger trustCode={trustCode} kind={kind} /> : null}
        </>
      )}
    </Page>
  );
}

function TrustLedger({ trustCode, kind }: { trustCode: string; kind: TaskKind | undefined }) {
  const trusts = useClient(TrustService);
  // Another trust or kind starts again from the newest page, keeping the old rows on screen until the new
  // ones arrive.
  const pager = usePager(`${trustCode}/${kind ?? ""}`);
  const page = useLoad(
    (signal) => trusts.listTrustActivity({ trust: trustCode, kinds: kind === undefined ? [] : [kind], page: { pageSize: PAGE_SIZE, pageToken: pager.token } }, { signal }),
    [trustCode, kind, pager.token],
  );
  const entries = page.data?.entries ?? [];
  const next = page.data?.page?.nextPageToken ?? "";
  useEvery(IN_PROGRESS_POLL_MS, page.reload, pager.number === 1 && entries.some((e) => e.outcome === ActivityOutcome.IN_PROGRESS));
  const what = kind === undefined ? "work" : kindWords(kind).toLowerCase();
  return (
    <Panel
      id="ledger"
      title={`What ran at ${trustCode}`}
      actions={
        <button type="button" className="button button-small" onClick={page.reload} disabled={page.loading}>
          Reload
        </button>
      }
    >
      <ErrorMessage error={page.error} prefix="Loading the ledger" />
      {!page.data && !page.error ? (
        <Loading minHeight="24rem" />
      ) : (
        <div className="approvals-ledger-table" aria-busy={page.loading}>
          <DataTable
            caption={`Work the hub sent to ${trustCode}, newest first (page ${pager.number})`}
            columns={columns}
            rows={entries}
            rowKey={(e) => e.taskId}
            empty={pager.number === 1 ? `The hub has sent no ${what} to ${trustCode} yet.` : "No older entries."}
          />
        </div>
      )}
      <PagerControls pager={pager} nextPageToken={next} label="Ledger" busy={page.loading} words={{ previous: "Newer", next: "Older" }} />
    </Panel>
  );
}

const columns: Column<TrustActivity>[] = [
  {
    header: "When",
    width: "10rem",
    cell: (e) => (
      <>
        <span className="approvals-nowrap">{formatTime(e.requestedAt)}</span>
        <span className="approvals-ledger-detail">{formatAgo(e.requestedAt)}</span>
      </>
    ),
  },
  { header: "Work", width: "14rem", cell: (e) => <WorkCell entry={e} /> },
  { header: "Project", width: "11.5rem", cell: (e) => e.projectName || <span className="approvals-muted">none (diagnostic)</span> },
  { header: "Asked by", width: "16.5rem", cell: (e) => askedBy(e) },
  {
    header: "Outcome",
    width: "13rem",
    cell: (e) => (
      <>
        <OutcomeBadge activity={e} />
        {outcomeDetail(e) ? <span className="approvals-ledger-detail">{outcomeDetail(e)}</span> : null}
      </>
    ),
  },
  { header: "Decision it ran under", cell: (e) => <DecisionCell entry={e} /> },
];

function WorkCell({ entry: e }: { entry: TrustActivity }) {
  const d = e.details;
  let detail = "";
  let sql = "";
  switch (d.case) {
    case "cohortQuery":
      detail = "aggregate counts only";
      sql = d.value.sql;
      break;
    case "freezeCohort":
      detail = "the approved cohort, kept for the project";
      break;
    case "training":
      detail = d.value.stop
        ? `end of job, model ${d.value.modelName || "(deleted)"}`
        : `round ${d.value.round} of ${d.value.evaluate ? "evaluating" : "training"} model ${d.value.modelName || "(deleted)"}`;
      break;
    case "imagingImport":
      detail = d.value.convertToNifti ? "studies into the research store, with NIfTI" : "studies into the research store";
      break;
    case "imagingDelete":
      detail = d.value.reason ? `research copies: ${d.value.reason}` : "research copies";
      break;
    default:
      detail = e.kind === TaskKind.ECHO ? "a round trip to check the link" : "";
  }
  return (
    <>
      <span className="approvals-ledger-kind">{kindWords(e.kind)}</span>
      {detail ? <span className="approvals-ledger-detail">{detail}</span> : null}
      {sql ? (
        <details className="approvals-ledger-sql">
          <summary>SQL</summary>
          <pre className="sql">{sql.trim()}</pre>
        </details>
      ) : null}
    </>
  );
}

function askedBy(e: TrustActivity): string {
  if (e.requester) return personLabel(e.requester);
  if (e.requestedBy === "system") return e.kind === TaskKind.IMAGING_IMPORT ? "FLIP, once the cohort froze" : "FLIP";
  if (e.requestedBy === "bootstrap-admin") return "the bootstrap admin";
  return e.requestedBy || "—";
}

/** The counts or reason beside an outcome, as the trust reported them. */
function outcomeDetail(e: TrustActivity): string {
  if (e.outcome === ActivityOutcome.REFUSED || e.outcome === ActivityOutcome.FAILED || e.outcome === ActivityOutcome.CANCELLED) return e.outcomeDetail;
  if (e.outcome !== ActivityOutcome.DONE) return "";
  const d = e.details;
  switch (d.case) {
    case "cohortQuery":
      return `${formatCount(d.value.recordCount)} records`;
    case "freezeCohort":
      return `${formatCount(d.value.personCount)} persons, ${formatCount(d.value.studyCount)} imaging studies`;
    case "training":
      return d.value.stop ? "" : `${formatCount(d.value.samples)} samples`;
    case "imagingImport": {
      const v = d.value;
      const missed = [v.studiesFailed ? `${formatCount(v.studiesFailed)} failed` : "", v.studiesNotFound ? `${formatCount(v.studiesNotFound)} not found` : ""].filter(Boolean);
      return `${formatCount(v.studiesImported)} of ${formatCount(v.studiesRequested)} studies${missed.length ? `; ${missed.join(", ")}` : ""}`;
    }
    case "imagingDelete":
      return `${formatCount(d.value.studiesDeleted)} studies, ${formatCount(d.value.imagesDeleted)} images`;
    default:
      return "";
  }
}

function DecisionCell({ entry: e }: { entry: TrustActivity }) {
  const d = e.decision;
  if (!d) {
    return <span className="approvals-muted">{e.kind === TaskKind.COHORT_QUERY ? "none needed: cohort discovery, before staging" : "—"}</span>;
  }
  return (
    <>
      <DecisionBadge state={d.state} />
      <span className="approvals-ledger-detail">{personLabel(d.decider, d.decidedBy || "—")}</span>
      <span className="approvals-ledger-detail">{formatTime(d.decidedAt)}</span>
      {d.reason ? <span className="approvals-ledger-detail">“{d.reason}”</span> : null}
    </>
  );
}
