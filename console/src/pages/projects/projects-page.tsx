import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { ProjectService, type Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { isAdmin, isViewer, mayCreateProjects } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { DataTable } from "../../ui/data-table.js";
import { ProjectTextFields, type ProjectText } from "./project-fields.js";
import { formatTime, personLabel } from "../../ui/format.js";
import { ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { ShowMoreButton, useShowMore } from "../../ui/show-more.js";
import { DecisionBadge, ProjectStatusBadge } from "./project-words.js";
import "./projects.css";

const PAGE = 50;

/** The projects the person may see (the first 50, grown by "Show more" to the end of the list), and a form to start one. */
export function ProjectsPage() {
  const projects = useClient(ProjectService);
  const user = useUser();
  const admin = isAdmin(user);
  const seesAll = admin || isViewer(user);
  const list = useShowMore(async (page, signal) => {
    const res = await projects.listProjects({ page }, { signal });
    return { rows: res.projects, nextPageToken: res.page?.nextPageToken ?? "" };
  }, [], PAGE);
  return (
    <Page title="Projects" subtitle={seesAll ? `Every project (you are ${admin ? "an Admin" : "a Viewer"}), with each trust's decision.` : "Projects you own or belong to, with each trust's decision."}>
      <div className={mayCreateProjects(user) ? "projects-layout" : "projects-layout projects-layout-list-only"}>
        <Panel title={seesAll ? "All projects" : "Your projects"} id="project-list">
          <ErrorMessage error={list.error} prefix="Could not list the projects" />
          {list.rows ? (
            <>
              <DataTable<Project>
                caption="Projects"
                rows={list.rows}
                rowKey={(p) => p.id}
                empty={mayCreateProjects(user) ? "No projects yet. Start one with the form “New project”." : "No projects yet."}
                columns={[
                  {
                    header: "Name",
                    width: "30%",
                    cell: (p) => (
                      <>
                        <Link to={`/projects/${p.id}`}>{p.name}</Link>
                        <div>
                          <ProjectStatusBadge status={p.status} />
                        </div>
                      </>
                    ),
                  },
                  { header: "Owner", width: "30%", cell: (p) => personLabel(p.owner, p.ownerId || "—") },
                  { header: "Trusts", width: "40%", cell: (p) => <Decisions project={p} /> },
                  { header: "Created", width: "11rem", cell: (p) => formatTime(p.createdAt) },
                ]}
              />
              <ShowMoreButton list={list} label="Show more projects" className="projects-more" />
            </>
          ) : list.error ? null : (
            <Loading label="Loading projects…" minHeight="12rem" />
          )}
        </Panel>
        {mayCreateProjects(user) ? <NewProjectForm /> : null}
      </div>
    </Page>
  );
}

/** The trusts a project is staged at, each with its decision in words. */
function Decisions({ project }: { project: Project }) {
  if (project.decisions.length === 0) return <span className="projects-muted">not staged</span>;
  return (
    <ul className="projects-decisions" aria-label={`Decisions on ${project.name}`}>
      {project.decisions.map((d) => (
        <li key={d.trustId}>
          <span>{d.trustCode}</span> <DecisionBadge state={d.state} />
        </li>
      ))}
    </ul>
  );
}

function NewProjectForm() {
  const projects = useClient(ProjectService);
  const navigate = useNavigate();
  const [text, setText] = useState<ProjectText>({ name: "", description: "" });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <Panel title="New project">
      <form
        className="form"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          projects.createProject({ name: text.name.trim(), description: text.description.trim(), idempotencyKey: crypto.randomUUID() }).then(
            ({ project }) => navigate(`/projects/${project!.id}`),
            (err: unknown) => {
              setError(err);
              setBusy(false);
            },
          );
        }}
      >
        <ProjectTextFields value={text} onChange={setText} error={error} errorPrefix="Could not create the project" />
        <div>
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Creating…" : "Create project"}
          </button>
        </div>
      </form>
    </Panel>
  );
}
