import { useRef, useState, type FormEvent } from "react";
import { AuditService, type AuditEntry, type VerifyAuditChainResponse } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { useClient } from "../../session/session-context.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatCount, formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { PagerControls, usePager } from "../../ui/pager.js";
import "./admin.css";

const PAGE_SIZE = 50;

interface Filter {
  action: string;
  actor: string;
  target: string;
}

const NO_FILTER: Filter = { action: "", actor: "", target: "" };

function filterWords(f: Filter): string {
  const parts = [
    f.action ? `action starts with "${f.action}"` : "",
    f.actor ? `actor is "${f.actor}"` : "",
    f.target ? `target is "${f.target}"` : "",
  ].filter(Boolean);
  return parts.length ? parts.join(", ") : "all entries";
}

/** JSON as people read it: indented; the raw text when it is not JSON. */
function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The append-only audit log, newest first, filtered and paged, and a check of its hash chain (Admin). */
export function AuditPage() {
  const audit = useClient(AuditService);
  const users = useClient(UserService);
  const pager = usePager();
  const [form, setForm] = useState<Filter>(NO_FILTER);
  const [applied, setApplied] = useState<Filter>(NO_FILTER);
  // Newest first, pinned below the first page's top entry: entries appended meanwhile do not shift the pages.
  const pinnedBelow = useRef(0n);
  const list = useLoad(
    async (signal) => {
      // People know each other by email; the log names users as "user:<id>".
      const actor = applied.actor.includes("@") ? `user:${(await users.getUser({ user: applied.actor }, { signal })).user?.id ?? ""}` : applied.actor;
      const beforeSeq = pinnedBelow.current;
      const res = await audit.listAuditEntries(
        { actionPrefix: applied.action, actor, target: applied.target, newestFirst: true, beforeSeq, page: { pageSize: PAGE_SIZE, pageToken: pager.token } },
        { signal },
      );
      if (beforeSeq === 0n && res.entries[0]) pinnedBelow.current = res.entries[0].seq + 1n;
      return { res, filter: applied, pageNumber: pager.number };
    },
    [audit, users, applied, pager.token],
  );
  const showNewest = () => {
    pinnedBelow.current = 0n;
    pager.reset();
    list.reload();
  };
  const [verdict, setVerdict] = useState<VerifyAuditChainResponse>();
  const [verifying, setVerifying] = useState(false);
  const [verifyError, setVerifyError] = useState<unknown>();

  const verify = async () => {
    setVerifying(true);
    setVerdict(undefined);
    setVerifyError(undefined);
    try {
      setVerdict(await audit.verifyAuditChain({}));
    } catch (e) {
      setVerifyError(e);
    } finally {
      setVerifying(false);
    }
  };

  const apply = (e: FormEvent) => {
    e.preventDefault();
    setApplied({ action: form.action.trim(), actor: form.actor.trim(), target: form.target.trim() });
    showNewest();
  };

  const columns: Column<AuditEntry>[] = [
    { header: "Seq", width: "4.5rem", numeric: true, cell: (e) => String(e.seq) },
    { header: "Time", width: "10.5rem", cell: (e) => formatTime(e.at) },
    { header: "Actor", width: "16rem", cell: (e) => <span title={e.actor}>{personLabel(e.actorPerson, e.actor)}</span> },
    { header: "Action", width: "15rem", cell: (e) => <code>{e.action}</code> },
    { header: "Target", width: "16rem", cell: (e) => <code className="admin-small">{e.target}</code> },
    { header: "Change", cell: (e) => <ChangeCell entry={e} /> },
  ];

  const loaded = list.data;
  return (
    <Page
      title="Audit log"
      subtitle="Every decision and change of state, append-only and hash-chained, newest first."
      actions={
        <button type="button" className="button button-primary" disabled={verifying} onClick={() => void verify()}>
          {verifying ? "Verifying…" : "Verify chain"}
        </button>
      }
    >
      <ErrorMessage error={verifyError} prefix="Could not verify the chain" />
      {verdict ? <Verdict verdict={verdict} /> : null}

      <Panel title="Filter">
        <form className="form-row" onSubmit={apply}>
          <Field label="Action starts with" hint='e.g. "trust." or "project.approved"'>
            {(p) => <input {...p} value={form.action} onChange={(e) => setForm({ ...form, action: e.target.value })} />}
          </Field>
          <Field label="Actor" hint="an email, or user:<id>, trust:<code>, system">
            {(p) => <input {...p} value={form.actor} onChange={(e) => setForm({ ...form, actor: e.target.value })} />}
          </Field>
          <Field label="Target" hint="e.g. trust:<id>, user:<id>, platform">
            {(p) => <input {...p} value={form.target} onChange={(e) => setForm({ ...form, target: e.target.value })} />}
          </Field>
          <button type="submit" className="button button-primary">
            Apply filters
          </button>
          <button
            type="button"
            className="button"
            onClick={() => {
              setForm(NO_FILTER);
              setApplied(NO_FILTER);
              showNewest();
            }}
          >
            Clear
          </button>
        </form>
      </Panel>

      <Panel
        title="Entries"
        actions={
          <button type="button" className="button button-small" onClick={showNewest} disabled={list.loading}>
            Show the newest
          </button>
        }
      >
        <LiveStatus>
          {loaded
            ? `${formatCount(loaded.res.entries.length)} ${loaded.res.entries.length === 1 ? "entry" : "entries"} on page ${loaded.pageNumber}, newest first: ${filterWords(loaded.filter)}.`
            : ""}
        </LiveStatus>
        <ErrorMessage error={list.error} prefix="Could not list the audit log" />
        {loaded ? (
          <>
            <DataTable
              caption="Audit entries"
              columns={columns}
              rows={loaded.res.entries}
              rowKey={(e) => String(e.seq)}
              empty={filterWords(loaded.filter) === "all entries" ? "The audit log is empty." : "No entry matches these filters."}
            />
            <PagerControls pager={pager} nextPageToken={loaded.res.page?.nextPageToken} label="Audit log" busy={list.loading} />
          </>
        ) : list.error ? null : (
          <Loading label="Loading the audit log…" minHeight="16rem" />
        )}
      </Panel>
    </Page>
  );
}

function ChangeCell({ entry }: { entry: AuditEntry }) {
  if (!entry.beforeJson && !entry.afterJson) return <span className="admin-muted">—</span>;
  return (
    <details className="admin-change">
      <summary>{entry.beforeJson && entry.afterJson ? "Before and after" : entry.afterJson ? "After" : "Before"}</summary>
      {entry.beforeJson ? (
        <>
          <h3>Before</h3>
          <pre className="sql">{prettyJson(entry.beforeJson)}</pre>
        </>
      ) : null}
      {entry.afterJson ? (
        <>
          <h3>After</h3>
          <pre className="sql">{prettyJson(entry.afterJson)}</pre>
        </>
      ) : null}
    </details>
  );
}

function Verdict({ verdict }: { verdict: VerifyAuditChainResponse }) {
  if (verdict.ok) {
    return (
      <p className="admin-verdict admin-verdict-ok" role="status">
        ✓ Chain verified: {formatCount(verdict.entriesChecked)} entries
      </p>
    );
  }
  return (
    <div className="admin-verdict admin-verdict-broken" role="alert">
      <p>
        ✗ Chain broken at entry {String(verdict.firstBrokenSeq)}: {verdict.problem}
      </p>
      <p className="admin-small">
        {formatCount(verdict.entriesChecked)} entries before it verified. An entry was removed, re-pointed or altered after it was written: keep the database as
        it is and investigate.
      </p>
    </div>
  );
}
