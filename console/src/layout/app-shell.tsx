import { Navigate, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { roleLabel, homePath, isAdmin, isResearcher, isTrustAdmin, isViewer } from "../session/roles.js";
import { useClient, useSessionState, useSessionStore } from "../session/session-context.js";
import { useEvery } from "../ui/use-every.js";
import { useLoad } from "../ui/use-load.js";
import { Page } from "../ui/page.js";

/** The frame of every signed-in page: a skip link, the navigation for the person's roles, and the page. */
export function AppShell() {
  const state = useSessionState();
  const location = useLocation();
  if (state.status !== "signed-in") {
    const next = location.pathname + location.search;
    return <Navigate to={`/sign-in${next === "/" ? "" : `?next=${encodeURIComponent(next)}`}`} replace state={{ reason: state.reason }} />;
  }
  const { user, authMethod } = state;
  // An admin required TOTP and the person has not enrolled: the hub refuses everything else until they do.
  const mustEnrol = authMethod === "session" && user.totpRequired && !user.totpEnrolled;
  if (mustEnrol && location.pathname !== "/account") return <Navigate to="/account" replace />;
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="FLIP home">
          FLIP
        </NavLink>
        {mustEnrol ? null : <MainNav />}
        <UserMenu />
      </header>
      {mustEnrol ? null : <DeploymentBanner />}
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

function MainNav() {
  const state = useSessionState();
  if (state.status !== "signed-in") return null;
  const u = state.user;
  // What each role may read, as the hub decides it: projects for Researchers, Viewers and Admins; jobs also
  // for Trust Admins (those of projects staged at their trust).
  const readsProjects = isResearcher(u) || isViewer(u) || isAdmin(u);
  const link = (to: string, label: string) => (
    <li>
      <NavLink to={to}>{label}</NavLink>
    </li>
  );
  return (
    <nav aria-label="Main">
      <ul className="nav">
        {readsProjects ? link("/projects", "Projects") : null}
        {readsProjects || isTrustAdmin(u) ? link("/jobs", "Training jobs") : null}
        {isTrustAdmin(u) ? link("/approvals", "Approvals") : null}
        {isTrustAdmin(u) ? link("/ledger", "Trust ledger") : null}
        {isAdmin(u) ? link("/admin/trusts", "Trusts") : null}
        {isAdmin(u) ? link("/admin/users", "Users") : null}
        {isAdmin(u) ? link("/admin/audit", "Audit log") : null}
        {isAdmin(u) ? link("/admin/deployment", "Deployment") : null}
      </ul>
    </nav>
  );
}

function UserMenu() {
  const store = useSessionStore();
  const state = useSessionState();
  const navigate = useNavigate();
  if (state.status !== "signed-in") return null;
  const u = state.user;
  return (
    <div className="user-menu">
      <NavLink to="/account" className="user-name" title={u.roles.map((r) => roleLabel(r.role, r.trustId)).join(", ")}>
        {u.email}
      </NavLink>
      <button
        type="button"
        className="button button-small"
        onClick={() => {
          void store.signOut();
          navigate("/sign-in", { replace: true, state: { reason: "You signed out." } });
        }}
      >
        Sign out
      </button>
    </div>
  );
}

/** While an admin has the hub in deployment mode, everyone sees it (read again every 30 s): new work waits. */
function DeploymentBanner() {
  const admin = useClient(AdminService);
  const mode = useLoad((signal) => admin.getDeploymentMode({}, { signal }), []);
  useEvery(30_000, mode.reload);
  if (!mode.data?.enabled) return null;
  return (
    <div className="banner" role="status">
      Deployment mode is on: the hub is being upgraded. Running work finishes; new jobs and queries wait until it is switched off.
    </div>
  );
}

export function HomeRedirect() {
  const state = useSessionState();
  if (state.status !== "signed-in") return <Navigate to="/sign-in" replace />;
  return <Navigate to={homePath(state.user)} replace />;
}

export function NotFoundPage() {
  return (
    <Page title="Page not found">
      <p>
        There is no page at this address. <NavLink to="/">Go to your start page</NavLink>.
      </p>
    </Page>
  );
}
