import { useEffect, useState } from "react";
import { Navigate, useLocation, useNavigate, useSearchParams } from "react-router";
import { createClient } from "@connectrpc/connect";
import { AuthService, type SingleSignOn } from "@flip/gen/flip/hub/v1/users_pb.js";
import { errorText } from "../api/errors.js";
import { Field } from "../ui/field.js";
import { homePath } from "./roles.js";
import { useSessionState, useSessionStore } from "./session-context.js";
import { TotpRequiredError } from "./session-store.js";
import { beginSso } from "./sso.js";

/** Only paths of this console, so a crafted ?next= cannot send a person elsewhere after signing in. */
export function safeNext(next: string | null): string | undefined {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : undefined;
}

export function SignInPage() {
  const store = useSessionStore();
  const state = useSessionState();
  const navigate = useNavigate();
  const location = useLocation();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));
  const reason = (location.state as { reason?: string } | null)?.reason;
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needTotp, setNeedTotp] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [sso, setSso] = useState<SingleSignOn>();

  useEffect(() => {
    document.title = "Sign in · FLIP";
    createClient(AuthService, store.publicTransport)
      .getSignInOptions({})
      .then((o) => setSso(o.sso))
      .catch(() => undefined);
  }, [store]);

  if (state.status === "signed-in") return <Navigate to={next ?? homePath(state.user)} replace />;

  const submit = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await store.signInWithPassword(email.trim(), password, totp.trim());
      const s = store.state;
      navigate(next ?? (s.status === "signed-in" ? homePath(s.user) : "/"), { replace: true });
    } catch (e) {
      if (e instanceof TotpRequiredError) {
        setNeedTotp(true);
        setError(totp ? "That code did not work; enter the current one from your authenticator app." : "Enter the 6-digit code from your authenticator app.");
      } else {
        setError(errorText(e));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" className="sign-in">
      <h1>Sign in to FLIP</h1>
      <p className="sign-in-lead">Federated learning for hospitals: patient data stays at each trust.</p>
      {reason ? (
        <p className="notice" role="status">
          {reason}
        </p>
      ) : null}
      <form
        className="card form"
       
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field label="Email">{(p) => <input {...p} type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />}</Field>
        <Field label="Password">
          {(p) => <input {...p} type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />}
        </Field>
        {needTotp ? (
          <Field label="Authenticator code" hint="6 digits from your authenticator app">
            {(p) => (
              <input {...p} inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" maxLength={6} required autoFocus value={totp} onChange={(e) => setTotp(e.target.value)} />
            )}
          </Field>
        ) : null}
        {error ? (
          <p className="error" role="alert">
            {error}
          </p>
        ) : null}
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
      {sso ? (
        <div className="card sso">
          <button type="button" className="button" onClick={() => void beginSso(sso, next ?? "/")}>
            {sso.displayName || "Sign in with single sign-on"}
          </button>
        </div>
      ) : null}
    </main>
  );
}
