import type { RouteObject } from "react-router";
import { AppShell, HomeRedirect, NotFoundPage } from "./layout/app-shell.js";
import { SignInPage } from "./session/sign-in-page.js";
import { SsoCallbackPage } from "./session/sso-callback-page.js";
import { AccountPage } from "./pages/account/account-page.js";
import { ProjectsPage } from "./pages/projects/projects-page.js";
import { ProjectPage } from "./pages/projects/project-page.js";
import { CohortQueryPage } from "./pages/cohorts/cohort-query-page.js";
import { NewModelPage } from "./pages/training/new-model-page.js";
import { ModelPage } from "./pages/training/model-page.js";
import { JobsPage } from "./pages/training/jobs-page.js";
import { JobPage } from "./pages/training/job-page.js";
import { ApprovalsPage } from "./pages/approvals/approvals-page.js";
import { LedgerPage } from "./pages/approvals/ledger-page.js";
import { TrustsPage } from "./pages/admin/trusts-page.js";
import { UsersPage } from "./pages/admin/users-page.js";
import { AuditPage } from "./pages/admin/audit-page.js";
import { DeploymentPage } from "./pages/admin/deployment-page.js";

/** Every page of the console. Paths are real URLs: the hub answers any of them with the console. */
export const routes: RouteObject[] = [
  { path: "/sign-in", element: <SignInPage /> },
  { path: "/sso/callback", element: <SsoCallbackPage /> },
  {
    element: <AppShell />,
    children: [
      { index: true, element: <HomeRedirect /> },
      { path: "account", element: <AccountPage /> },
      { path: "projects", element: <ProjectsPage /> },
      { path: "projects/:projectId", element: <ProjectPage /> },
      { path: "projects/:projectId/cohorts/new", element: <CohortQueryPage /> },
      { path: "projects/:projectId/cohorts/:queryId", element: <CohortQueryPage /> },
      { path: "projects/:projectId/models/new", element: <NewModelPage /> },
      { path: "models/:modelId", element: <ModelPage /> },
      { path: "jobs", element: <JobsPage /> },
      { path: "jobs/:jobId", element: <JobPage /> },
      { path: "approvals", element: <ApprovalsPage /> },
      { path: "ledger", element: <LedgerPage /> },
      { path: "admin/trusts", element: <TrustsPage /> },
      { path: "admin/users", element: <UsersPage /> },
      { path: "admin/audit", element: <AuditPage /> },
      { path: "admin/deployment", element: <DeploymentPage /> },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
];
