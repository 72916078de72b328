import { useId, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router";
import { CohortService, type CohortQueryProblem } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService, ProjectStatus } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { errorText, invalidField } from "../../api/errors.js";
import { isAdmin } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { Field } from "../../ui/field.js";
import { ErrorMessage, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { useSqlCheck } from "./sql-check.js";
import "./cohorts.css";

/** What "Edit as a new query" hands the editor. */
export interface EditorStart {
  name: string;
  sql: string;
}

const sentence = (s: string) => (s ? s[0]!.toUpperCase() + s.slice(1) : s);

/** A new cohort query: name and SQL, checked against the default rules while the person types, then run at every trust. */
export function NewCohortQueryPage({ projectId }: { projectId: string }) {
  const user = useUser();
  const projects = useClient(ProjectService);
  const cohorts = useClient(CohortService);
  const navigate = useNavigate();
  const start = (useLocation().state as EditorStart | null) ?? { name: "", sql: "" };
  const project = useLoad(async (signal) => (await projects.getProject({ projectId }, { signal })).project!, [projectId]);
  const [name, setName] = useState(start.name);
  const [sql, setSql] = useState(start.sql);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const check = useSqlCheck(sql);
  const checkId = useId();
  const p = project.data;
  const canEdit = p !== undefined && (isAdmin(user) || p.ownerId === user.id);
  const sqlError = invalidField(error) === "sql" ? errorText(error) : undefined;

  return (
    <Page
      title="New cohort query"
      subtitle={
        <>
          For project <Link to={`/projects/${projectId}`}>{p?.name ?? "…"}</Link>. Each trust answers with counts and distributions only, never rows.
        </>
      }
    >
      <ErrorMessage error={project.error} prefix="Could not load the project" />
      {p && p.status !== ProjectStatus.UNSTAGED ? (
        <p className="notice">The project is staged: the trusts are deciding on its latest query. Unstage it on the project page before querying again.</p>
      ) : null}
      {p && !canEdit ? <p className="notice">Only the project's owner or an Admin can run cohort queries; the hub will refuse yours.</p> : null}
      <Panel title="Query">
        <form
          className="cohorts-editor"
          onSubmit={(e) => {
            e.preventDefault();
            setBusy(true);
            setError(undefined);
            cohorts.submitCohortQuery({ projectId, name: name.trim(), sql, idempotencyKey: crypto.randomUUID() }).then(
              ({ query }) => navigate(`/projects/${projectId}/cohorts/${query!.id}`),
              (err: unknown) => {
                setError(err);
                setBusy(false);
              },
            );
          }}
        >
          <div className="cohorts-editor-name">
            <Field label="Name" hint="So that you can find it again, e.g. “T2D born before 1970”.">
              {(f) => <input {...f} maxLength={120} value={name} onChange={(e) => setName(e.target.value)} />}
            </Field>
          </div>
          <div className="cohorts-editor-sql">
            <Field label="SQL" hint="One SELECT over the omop schema (e.g. omop.person). Return person_id to let trusts freeze the cohort later." error={sqlError}>
              {(f) => (
                <textarea
                  {...f}
                  aria-describedby={[f["aria-describedby"], checkId].filter(Boolean).join(" ")}
                  className="code cohorts-sql"
                  rows={16}
                  spellCheck={false}
                  autoCapitalize="off"
                  autoCorrect="off"
                  value={sql}
                  onChange={(e) => setSql(e.target.value)}
                />
              )}
            </Field>
          </div>
          <CheckResult id={checkId} sql={sql} checking={check.checking} problems={check.problems} error={check.error} />
          <div className="cohorts-editor-actions">
            <button type="submit" className="button button-primary" disabled={busy || sql.trim() === ""}>
              {busy ? "Sending…" : "Run at every trust"}
            </button>
            <p className="hint">Runs whatever the check says: each trust validates the query again and decides.</p>
            {sqlError ? null : <ErrorMessage error={error} prefix="Could not run the query" />}
          </div>
        </form>
      </Panel>
    </Page>
  );
}

/** The default rules' verdict beside the SQL, in a live region; old results stay while the next check runs. */
function CheckResult({ id, sql, checking, problems, error }: { id: string; sql: string; checking: boolean; problems: CohortQueryProblem[] | undefined; error: unknown }) {
  return (
    <aside className="cohorts-check" aria-labelledby={`${id}-title`}>
      <h3 id={`${id}-title`}>Checks</h3>
      <p className="cohorts-check-progress" aria-hidden="true">
        {checking && sql.trim() !== "" ? "Checking…" : "\u00a0"}
      </p>
      <div id={id} className="cohorts-check-result" role="status" aria-live="polite" aria-busy={checking}>
        {sql.trim() === "" ? (
          <p className="hint">Write a SELECT over the omop schema; it is checked against the default rules as you type.</p>
        ) : error ? (
          <p className="error">The check failed: {errorText(error)}</p>
        ) : problems === undefined ? null : problems.length === 0 ? (
          <p className="cohorts-ok">No problems found by the default rules.</p>
        ) : (
          <ul className="cohorts-problems" aria-label="Problems found">
            {problems.map((p) => (
              <li key={`${p.rule}:${p.message}`}>
                <span className="cohorts-problem-message">{sentence(p.message)}</span>
                <span className="cohorts-problem-rule">
                  Rule <code>{p.rule}</code>: {p.refusedByHub ? "the hub refuses to send this query." : "trusts with the default rules will refuse it."}
                </span>
              </li>
            ))}
          </ul>
        )}
      </div>
      <p className="hint">Each trust checks the query again when it runs and has the last word.</p>
    </aside>
  );
}
