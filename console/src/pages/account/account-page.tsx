import { useState } from "react";
import { AuthService, type BeginTotpEnrollmentResponse } from "@flip/gen/flip/hub/v1/users_pb.js";
import { roleLabel } from "../../session/roles.js";
import { useClient, useSessionState, useSessionStore } from "../../session/session-context.js";
import { ErrorMessage, Page, Panel } from "../../ui/page.js";
import { Field } from "../../ui/field.js";

/** Who you are, your roles, and TOTP enrolment (required before anything else when an admin asks for it). */
export function AccountPage() {
  const state = useSessionState();
  if (state.status !== "signed-in") return null;
  const { user, authMethod } = state;
  const mustEnrol = authMethod === "session" && user.totpRequired && !user.totpEnrolled;
  return (
    <Page title="Your account">
      {mustEnrol ? (
        <p className="notice" role="status">
          An administrator requires a second factor for your account. Set up your authenticator app below to continue.
        </p>
      ) : null}
      <Panel title="Profile">
        <dl className="facts">
          <dt>Email</dt>
          <dd>{user.email}</dd>
          <dt>Name</dt>
          <dd>{user.name || "—"}</dd>
          <dt>Roles</dt>
          <dd>{user.roles.map((r) => roleLabel(r.role, r.trustId)).join(", ") || "none"}</dd>
          <dt>Signed in with</dt>
          <dd>{authMethod === "oidc" ? "single sign-on" : authMethod === "session" ? "password" : authMethod}</dd>
        </dl>
      </Panel>
      {authMethod === "session" ? <TotpPanel enrolled={user.totpEnrolled} /> : null}
    </Page>
  );
}

function TotpPanel({ enrolled }: { enrolled: boolean }) {
  const auth = useClient(AuthService);
  const store = useSessionStore();
  const [secret, setSecret] = useState<BeginTotpEnrollmentResponse>();
  const [code, setCode] = useState("");
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState(false);
  if (enrolled || done) {
    return (
      <Panel title="Two-step sign-in">
        <p>Your authenticator app is set up: sign-in asks for its code.</p>
      </Panel>
    );
  }
  return (
    <Panel title="Two-step sign-in">
      {!secret ? (
        <>
          <p>Add FLIP to an authenticator app; sign-in will then ask for its 6-digit code.</p>
          <button type="button" className="button button-primary" onClick={() => auth.beginTotpEnrollment({}).then(setSecret, setError)}>
            Set up an authenticator app
          </button>
        </>
      ) : (
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault();
            auth.confirmTotpEnrollment({ code: code.trim() }).then(
              () => {
                setDone(true);
                void store.reloadUser();
              },
              setError,
            );
          }}
        >
          <p>
            In your authenticator app, add an account with this key (or open the link on a phone that has one):
          </p>
          <p>
            <code className="secret" aria-label="Authenticator key">
              {secret.secretBase32}
            </code>
          </p>
          <p>
            <a href={secret.otpauthUri}>Open in an authenticator app</a>
          </p>
          <Field label="Code from the app" hint="6 digits">
            {(p) => <input {...p} inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" maxLength={6} required value={code} onChange={(e) => setCode(e.target.value)} />}
          </Field>
          <button type="submit" className="button button-primary">
            Confirm
          </button>
        </form>
      )}
      <ErrorMessage error={error} />
    </Panel>
  );
}
