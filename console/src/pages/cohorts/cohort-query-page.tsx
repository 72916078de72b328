import { useParams } from "react-router";
import { NewCohortQueryPage } from "./query-editor.js";
import { QueryResultsPage } from "./query-results.js";

/** /projects/:projectId/cohorts/new writes a query; /projects/:projectId/cohorts/:queryId follows one. */
export function CohortQueryPage() {
  const { projectId = "", queryId } = useParams();
  return queryId ? <QueryResultsPage key={queryId} projectId={projectId} queryId={queryId} /> : <NewCohortQueryPage key={projectId} projectId={projectId} />;
}
