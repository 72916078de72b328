import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { TrustService, type Trust } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Role, UserService, type RoleGrant, type User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { errorText, invalidField } from "../../api/errors.js";
import { roleLabel } from "../../session/roles.js";
import { useClient, useUser } from "../../session/session-context.js";
import { ConfirmDialog } from "../../ui/confirm.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { Field } from "../../ui/field.js";
import { formatTime } from "../../ui/format.js";
import { Badge, ErrorMessage, LiveStatus, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { PagerControls, usePager } from "../../ui/pager.js";
import { ShownOnceDialog } from "./shown-once-dialog.js";
import "./admin.css";

const ROLES: Role[] = [Role.ADMIN, Role.RESEARCHER, Role.VIEWER, Role.TRUST_ADMIN];

const ROLE_HINTS: Record<Role, string> = {
  [Role.UNSPECIFIED]: "",
  [Role.ADMIN]: "runs the hub: trusts, users, audit log, deployment",
  [Role.RESEARCHER]: "projects, cohort queries, training",
  [Role.VIEWER]: "reads what they are shown",
  [Role.TRUST_ADMIN]: "approves or declines projects for one trust",
};

/** Trust ids to codes, for role labels, and the enabled trusts for the pickers: one ListTrusts. */
interface TrustNames {
  codeOf: (id: string) => string;
  enabled: Trust[];
}

function useTrustNames(): TrustNames {
  const client = useClient(TrustService);
  const trusts = useLoad((signal) => client.listTrusts({ includeDisabled: true, page: { pageSize: 500 } }, { signal }), [client]);
  const all = trusts.data?.trusts ?? [];
  const byId = new Map(all.map((t) => [t.id, t.code]));
  return { codeOf: (id) => byId.get(id) ?? id, enabled: all.filter((t) => !t.disabled) };
}

/** A required choice of one enabled trust (by id), for a Trust Admin grant. */
function TrustPicker({ trusts, value, onChange, ...field }: { trusts: Trust[]; value: string; onChange: (id: string) => void; id: string; "aria-describedby": string | undefined; "aria-invalid": boolean }) {
  return (
    <select {...field} required value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">Choose a trust…</option>
      {trusts.map((t) => (
        <option key={t.id} value={t.id}>
          {t.name} ({t.code})
        </option>
      ))}
    </select>
  );
}

const grantLabel = (g: RoleGrant, names: TrustNames) => roleLabel(g.role, g.trustId ? names.codeOf(g.trustId) : "");

function totpWords(u: User): string {
  if (u.totpEnrolled) return u.totpRequired ? "enrolled (required)" : "enrolled";
  return u.totpRequired ? "required, not enrolled" : "off";
}

/** Everyone who can sign in to the hub, their roles and second factor, and creating and managing them (Admin). */
export function UsersPage() {
  const client = useClient(UserService);
  const names = useTrustNames();
  const pager = usePager();
  const list = useLoad((signal) => client.listUsers({ page: { pageSize: 50, pageToken: pager.token } }, { signal }), [client, pager.token]);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<{ user: User; password: string }>();
  const [status, setStatus] = useState("");
  const [managing, setManaging] = useState<User>();

  const columns: Column<User>[] = [
    { header: "Email", width: "17rem", cell: (u) => u.email },
    { header: "Name", width: "10rem", cell: (u) => u.name || "—" },
    {
      header: "Roles",
      cell: (u) =>
        u.roles.length === 0 ? (
          <span className="admin-muted">none</span>
        ) : (
          <ul className="admin-badges">
            {u.roles.map((g) => (
              <li key={`${g.role}/${g.trustId}`}>
                <Badge tone={g.role === Role.ADMIN ? "info" : "neutral"}>{grantLabel(g, names)}</Badge>
              </li>
            ))}
          </ul>
        ),
    },
    { header: "TOTP", width: "10rem", cell: (u) => totpWords(u) },
    { header: "State", width: "6.5rem", cell: (u) => (u.disabled ? <Badge tone="bad">Disabled</Badge> : <Badge tone="good">Active</Badge>) },
    { header: "SSO subject", width: "9rem", cell: (u) => (u.oidcSubject ? <code>{u.oidcSubject}</code> : "—") },
    {
      header: "Actions",
      width: "7rem",
      cell: (u) => (
        <button type="button" className="button button-small" aria-label={`Manage ${u.email}`} onClick={() => setManaging(u)}>
          Manage
        </button>
      ),
    },
  ];

  return (
    <Page
      title="Users"
      subtitle="Who can sign in, with which roles, and how."
      actions={
        <button type="button" className="button button-primary" aria-expanded={creating} onClick={() => setCreating((c) => !c)}>
          New user
        </button>
      }
    >
      {creating ? (
        <NewUserForm
          names={names}
          onCancel={() => setCreating(false)}
          onCreated={(user, generated) => {
            setCreating(false);
            setStatus(`Created ${user.email}.`);
            if (generated) setCreated({ user, password: generated });
            list.reload();
          }}
        />
      ) : null}
      <LiveStatus>{status}</LiveStatus>
      <Panel title="All users">
        <ErrorMessage error={list.error} prefix="Could not list the users" />
        {list.data ? (
          <>
            <DataTable caption="Users" columns={columns} rows={list.data.users} rowKey={(u) => u.id} empty="No users." />
            <PagerControls pager={pager} nextPageToken={list.data.page?.nextPageToken} label="Users" busy={list.loading} />
          </>
        ) : list.error ? null : (
          <Loading label="Loading users…" minHeight="12rem" />
        )}
      </Panel>

      <ManageUserDialog
        user={managing}
        names={names}
        onChanged={(u) => {
          setManaging(u);
          list.reload();
        }}
        onClose={() => setManaging(undefined)}
      />
      <ShownOnceDialog
        title={created ? `Initial password for ${created.user.email}` : ""}
        secretLabel={created ? `Initial password (${created.user.email})` : "Initial password"}
        secret={created?.password}
        onClose={() => setCreated(undefined)}
      >
        {created ? (
          <p>
            Give it to {created.user.name || created.user.email} by a separate channel (not with the email address). They sign in with it at{" "}
            <code>{window.location.origin}/sign-in</code>
            {created.user.totpRequired ? " and then set up an authenticator app, which you required" : ""}.
          </p>
        ) : null}
      </ShownOnceDialog>
    </Page>
  );
}

/** A password like the CLI's --generate-password: 15 random bytes, base64url (20 characters). */
function generatePassword(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(15));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

type PasswordChoice = "generate" | "type" | "sso";

function NewUserForm({ names, onCreated, onCancel }: { names: TrustNames; onCreated: (u: User, generatedPassword: string | undefined) => void; onCancel: () => void }) {
  const client = useClient(UserService);
  const formId = useId();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [choice, setChoice] = useState<PasswordChoice>("generate");
  const [password, setPassword] = useState("");
  const [roles, setRoles] = useState<Set<Role>>(new Set([Role.RESEARCHER]));
  const [trust, setTrust] = useState("");
  const [totpRequired, setTotpRequired] = useState(false);
  const [oidcSubject, setOidcSubject] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const field = invalidField(error);
  const errorAt = (...fields: string[]) => (field && fields.some((f) => field.startsWith(f)) ? errorText(error) : undefined);
  const shownAtField = ["email", "name", "password", "roles", "oidc_subject"].some((f) => field?.startsWith(f));

  const toggleRole = (r: Role, on: boolean) =>
    setRoles((rs) => {
      const next = new Set(rs);
      if (on) next.add(r);
      else next.delete(r);
      return next;
    });

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const generated = choice === "generate" ? generatePassword() : undefined;
    try {
      const r = await client.createUser({
        email: email.trim(),
        name: name.trim(),
        password: generated ?? (choice === "type" ? password : ""),
        roles: [...roles].map((role) => ({ role, trustId: role === Role.TRUST_ADMIN ? trust : "" })),
        totpRequired,
        oidcSubject: oidcSubject.trim(),
      });
      if (r.user) onCreated(r.user, generated);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="New user">
      <form className="form" onSubmit={(e) => void submit(e)}>
        <div className="form-row">
          <Field label="Email" error={errorAt("email")}>
            {(p) => <input {...p} type="email" required autoComplete="off" value={email} onChange={(e) => setEmail(e.target.value)} />}
          </Field>
          <Field label="Name" error={errorAt("name")}>
            {(p) => <input {...p} maxLength={120} autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
        </div>
        <fieldset>
          <legend>Initial password</legend>
          <label className="checkbox">
            <input type="radio" name="password-choice" checked={choice === "generate"} onChange={() => setChoice("generate")} />
            Generate one (shown once, after creating)
          </label>
          <label className="checkbox">
            <input type="radio" name="password-choice" checked={choice === "type"} onChange={() => setChoice("type")} />
            Type one
          </label>
          <label className="checkbox">
            <input type="radio" name="password-choice" checked={choice === "sso"} onChange={() => setChoice("sso")} />
            None: signs in only with single sign-on (give the SSO subject below)
          </label>
          {choice === "type" ? (
            <Field label="Password" hint="At least 12 characters, not a common one, not containing the email address." error={errorAt("password")}>
              {(p) => <input {...p} type="password" autoComplete="new-password" required minLength={12} value={password} onChange={(e) => setPassword(e.target.value)} />}
            </Field>
          ) : null}
        </fieldset>
        <fieldset>
          <legend>Roles</legend>
          {ROLES.map((r) => (
            <div key={r} className="checkbox">
              <input
                type="checkbox"
                id={`${formId}-role-${r}`}
                aria-describedby={`${formId}-role-${r}-hint`}
                checked={roles.has(r)}
                onChange={(e) => toggleRole(r, e.target.checked)}
              />
              <label htmlFor={`${formId}-role-${r}`}>{roleLabel(r)}</label>
              <span id={`${formId}-role-${r}-hint`} className="admin-muted">
                — {ROLE_HINTS[r]}
              </span>
            </div>
          ))}
          {roles.has(Role.TRUST_ADMIN) ? (
            <Field label="Trust they are Trust Admin of" error={errorAt("roles")}>
              {(p) => (
                <TrustPicker {...p} trusts={names.enabled} value={trust} onChange={setTrust} />
              )}
            </Field>
          ) : null}
          <p className="hint">With no role ticked the user is a Viewer.</p>
        </fieldset>
        <label className="checkbox">
          <input type="checkbox" checked={totpRequired} onChange={(e) => setTotpRequired(e.target.checked)} />
          Require an authenticator app (TOTP): they set it up at their first sign-in
        </label>
        <Field label="SSO subject (optional)" hint="Links the user to single sign-on; the hub must have a provider configured." error={errorAt("oidc_subject")}>
          {(p) => <input {...p} maxLength={255} autoComplete="off" required={choice === "sso"} value={oidcSubject} onChange={(e) => setOidcSubject(e.target.value)} />}
        </Field>
        {shownAtField ? null : <ErrorMessage error={error} />}
        <div className="form-row">
          <button type="submit" className="button button-primary" disabled={busy}>
            Create user
          </button>
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Panel>
  );
}

type Confirming = "disable" | "enable" | "reset-totp";

/** One user's roles, second factor and state, each change a separate call; the hub's refusals show here. */
function ManageUserDialog({ user, names, onChanged, onClose }: { user: User | undefined; names: TrustNames; onChanged: (u: User) => void; onClose: () => void }) {
  const client = useClient(UserService);
  const me = useUser();
  const ref = useRef<HTMLDialogElement>(null);
  const [grantRole, setGrantRole] = useState<Role>(Role.RESEARCHER);
  const [grantTrust, setGrantTrust] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState("");
  const [confirming, setConfirming] = useState<Confirming>();
  const userId = user?.id;

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (userId !== undefined && !d.open) d.showModal();
    if (userId === undefined && d.open) d.close();
    setError(undefined);
    setDone("");
  }, [userId]);

  const act = async (what: string, call: () => Promise<{ user?: User }>) => {
    setBusy(true);
    setError(undefined);
    setDone("");
    try {
      const r = await call();
      if (r.user) onChanged(r.user);
      setDone(what);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setConfirming(undefined);
    }
  };

  const u = user;
  const self = u?.id === me.id;
  return (
    <>
      <dialog ref={ref} className="dialog admin-dialog admin-dialog-wide" aria-labelledby="manage-user-title" onCancel={(e) => (e.preventDefault(), onClose())}>
        {u ? (
          <div className="admin-dialog-body">
            <h2 id="manage-user-title">Manage {u.email}</h2>
            <p className="admin-muted">
              {u.name || "No name"} · created {formatTime(u.createdAt)}
              {u.oidcSubject ? ` · SSO subject ${u.oidcSubject}` : ""}
            </p>

            <h3>Roles</h3>
            {u.roles.length === 0 ? (
              <p>None.</p>
            ) : (
              <ul className="admin-role-list">
                {u.roles.map((g) => (
                  <li key={`${g.role}/${g.trustId}`}>
                    <span>{grantLabel(g, names)}</span>
                    <button
                      type="button"
                      className="button button-small"
                      disabled={busy}
                      aria-label={`Revoke ${grantLabel(g, names)} from ${u.email}`}
                      onClick={() => void act(`Revoked ${grantLabel(g, names)}.`, () => client.revokeRole({ user: u.id, grant: g }))}
                    >
                      Revoke
                    </button>
                  </li>
                ))}
              </ul>
            )}
            <form
              className="form-row admin-grant"
              onSubmit={(e) => {
                e.preventDefault();
                const grant = { role: grantRole, trustId: grantRole === Role.TRUST_ADMIN ? grantTrust : "" };
                void act(`Granted ${roleLabel(grantRole, grantRole === Role.TRUST_ADMIN ? names.codeOf(grantTrust) : "")}.`, () => client.grantRole({ user: u.id, grant }));
              }}
            >
              <Field label="Role to grant">
                {(p) => (
                  <select {...p} value={grantRole} onChange={(e) => setGrantRole(Number(e.target.value) as Role)}>
                    {ROLES.map((r) => (
                      <option key={r} value={r}>
                        {roleLabel(r)}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              {grantRole === Role.TRUST_ADMIN ? (
                <Field label="Of trust">
                  {(p) => (
                    <TrustPicker {...p} trusts={names.enabled} value={grantTrust} onChange={setGrantTrust} />
                  )}
                </Field>
              ) : null}
              <button type="submit" className="button" disabled={busy}>
                Grant role
              </button>
            </form>

            <h3>Authenticator app (TOTP)</h3>
            <p>{totpWords(u)[0]!.toUpperCase() + totpWords(u).slice(1)}.</p>
            <div className="admin-actions">
              <button
                type="button"
                className="button button-small"
                disabled={busy}
                onClick={() =>
                  void act(u.totpRequired ? "TOTP is no longer required." : "TOTP is required from their next call.", () =>
                    client.setTotpRequired({ user: u.id, required: !u.totpRequired }),
                  )
                }
              >
                {u.totpRequired ? "Stop requiring TOTP" : "Require TOTP"}
              </button>
              <button type="button" className="button button-small" disabled={busy || !u.totpEnrolled} onClick={() => setConfirming("reset-totp")}>
                Reset TOTP
              </button>
            </div>

            <h3>Account</h3>
            <p>{u.disabled ? "Disabled: they cannot sign in." : "Active."}</p>
            <div className="admin-actions">
              {u.disabled ? (
                <button type="button" className="button button-small" disabled={busy} onClick={() => setConfirming("enable")}>
                  Enable user
                </button>
              ) : (
                <button type="button" className="button button-small button-danger" disabled={busy} onClick={() => setConfirming("disable")}>
                  Disable user
                </button>
              )}
            </div>

            <ErrorMessage error={error} />
            <p className="live-status" role="status" aria-live="polite">
              {done}
            </p>
            <div className="dialog-actions">
              <button type="button" className="button button-primary" onClick={onClose}>
                Close
              </button>
            </div>
          </div>
        ) : null}
      </dialog>
      <ConfirmDialog
        open={confirming !== undefined && u !== undefined}
        title={
          confirming === "disable" ? `Disable ${u?.email}?` : confirming === "enable" ? `Enable ${u?.email}?` : `Reset the authenticator app of ${u?.email}?`
        }
        confirmLabel={confirming === "disable" ? "Disable user" : confirming === "enable" ? "Enable user" : "Reset TOTP"}
        danger={confirming !== "enable"}
        busy={busy}
        onCancel={() => setConfirming(undefined)}
        onConfirm={() => {
          if (!u) return;
          if (confirming === "reset-totp") void act("TOTP reset; their sessions ended.", () => client.resetTotp({ user: u.id }));
          else void act(confirming === "disable" ? "Disabled." : "Enabled.", () => client.setUserDisabled({ user: u.id, disabled: confirming === "disable" }));
        }}
      >
        {confirming === "disable" ? (
          <p>
            Their sessions end and their API tokens are revoked at once; enabling them later does not bring those back. The hub refuses to disable the last
            enabled Admin.{self ? " This is your own account: you will be signed out." : ""}
          </p>
        ) : confirming === "enable" ? (
          <p>They can sign in again with their password or single sign-on; API tokens revoked when they were disabled stay revoked.</p>
        ) : (
          <p>
            Their authenticator app stops working for FLIP and their sessions end (e.g. after a lost phone).{" "}
            {u?.totpRequired ? "TOTP is required, so they set up an app again at their next sign-in." : "TOTP is not required, so they sign in with their password alone until they set one up again."}
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
