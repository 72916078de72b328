import { useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { useNavigate } from "react-router";
import { ProjectService, ProjectStatus, type Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { useClient } from "../../session/session-context.js";
import { ConfirmedActionButton } from "../../ui/confirm.js";
import { ProjectTextFields, type ProjectText } from "./project-fields.js";
import { formatTime, personLabel } from "../../ui/format.js";
import { Panel } from "../../ui/page.js";
import { ProjectStatusBadge } from "./project-words.js";

/**
 * The project's details, and for its owner or an Admin an editor for name and description while the
 * project is unstaged (staging makes it read-only at the hub). The edit carries the version it started
 * from, so a change someone made meanwhile is refused rather than overwritten.
 */
export function ProjectDetails({ project, canEdit, onChanged }: { project: Project; canEdit: boolean; onChanged: () => void }) {
  const [editing, setEditing] = useState(false);
  const editable = canEdit && project.status === ProjectStatus.UNSTAGED;
  return (
    <Panel
      title="Details"
      actions={
        editable && !editing ? (
          <button type="button" className="button button-small" onClick={() => setEditing(true)}>
            Edit details
          </button>
        ) : null
      }
    >
      {editing && editable ? (
        <DetailsForm
          project={project}
          onDone={(reload) => {
            setEditing(false);
            if (reload) onChanged();
          }}
        />
      ) : (
        <dl className="facts">
          <dt>Name</dt>
          <dd>{project.name}</dd>
          <dt>Description</dt>
          <dd>{project.description || "—"}</dd>
          <dt>Owner</dt>
          <dd>{personLabel(project.owner, project.ownerId || "—")}</dd>
          <dt>Status</dt>
          <dd>
            <ProjectStatusBadge status={project.status} />
          </dd>
          <dt>Created</dt>
          <dd>{formatTime(project.createdAt)}</dd>
        </dl>
      )}
      {canEdit && !editable ? <p className="hint">A staged project is read-only; unstage it to edit its details.</p> : null}
    </Panel>
  );
}

/** `onDone(reload)`: reload after a save, and after a cancel that followed a refusal (the project may have changed). */
function DetailsForm({ project, onDone }: { project: Project; onDone: (reload: boolean) => void }) {
  const projects = useClient(ProjectService);
  const [text, setText] = useState<ProjectText>({ name: project.name, description: project.description });
  // The version the edit started from, kept if the page reads the project again meanwhile: a save then
  // fails on someone else's change instead of overwriting it.
  const [startedFrom] = useState(project.version);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <form
      className="form"
      aria-label="Edit project details"
      onSubmit={(e) => {
        e.preventDefault();
        setBusy(true);
        setError(undefined);
        projects.updateProject({ projectId: project.id, name: text.name.trim(), description: text.description.trim(), expectedVersion: startedFrom }).then(
          () => onDone(true),
          (err: unknown) => {
            setError(err);
            setBusy(false);
          },
        );
      }}
    >
      <ProjectTextFields value={text} onChange={setText} error={changedMeanwhile(error) ?? error} errorPrefix="Could not save the details" />
      <div className="form-row">
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? "Saving…" : "Save details"}
        </button>
        <button type="button" className="button" disabled={busy} onClick={() => onDone(error !== undefined)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The hub refused the edit because the project changed since it was read (its version moved on). */
function changedMeanwhile(error: unknown): Error | undefined {
  if (!(error instanceof ConnectError) || error.code !== Code.Aborted) return undefined;
  return new Error("someone changed this project while you were editing it. Cancel to see their change, then edit again.");
}

/** "Delete project" for its owner or an Admin, behind a dialog that says what deleting does at the hub and the trusts. */
export function DeleteProjectButton({ project }: { project: Project }) {
  const projects = useClient(ProjectService);
  const navigate = useNavigate();
  return (
    <ConfirmedActionButton
      label="Delete project"
      tone="danger"
      title={`Delete “${project.name}”?`}
      confirmLabel="Delete project"
      busyLabel="Deleting…"
      errorPrefix="Could not delete the project"
      action={() => projects.deleteProject({ projectId: project.id }).then(() => navigate("/projects", { replace: true }))}
    >
      <p>The project, its cohort queries and models leave every list. Its live training jobs are aborted, and every trust that imported its images deletes those research copies.</p>
      <p>The audit log keeps the project's history. This cannot be undone from the console.</p>
    </ConfirmedActionButton>
  );
}
