import { useEffect, useRef, useState } from "react";
import { Link, useNavigate } from "react-router";
import { errorText } from "../api/errors.js";
import { useSessionStore } from "./session-context.js";
import { completeSso } from "./sso.js";
import { safeNext } from "./sign-in-page.js";

/** Where the identity provider sends the browser back: exchanges the code, then goes where the person was going. */
export function SsoCallbackPage() {
  const store = useSessionStore();
  const navigate = useNavigate();
  const [error, setError] = useState<string>();
  const started = useRef(false);
  useEffect(() => {
    // Once: a code can be exchanged only once (React runs effects twice in development).
    if (started.current) return;
    started.current = true;
    document.title = "Signing in · FLIP";
    void (async () => {
      try {
        const { tokens, returnTo } = await completeSso(window.location.search);
        await store.signInWithTokens(tokens);
        navigate(safeNext(returnTo) ?? "/", { replace: true });
      } catch (e) {
        setError(errorText(e));
      }
    })();
  }, [store, navigate]);
  return (
    <main id="main" className="sign-in">
      <h1>Signing in</h1>
      {error ? (
        <>
          <p className="error" role="alert">
            Single sign-on did not complete: {error}
          </p>
          <p>
            <Link to="/sign-in">Back to sign-in</Link>
          </p>
        </>
      ) : (
        <p role="status">Completing single sign-on…</p>
      )}
    </main>
  );
}
