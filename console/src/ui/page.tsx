import { useEffect, type ReactNode } from "react";
import { errorText } from "../api/errors.js";

/** A page: its heading (also the tab's title), actions beside it, and its content. */
export function Page({ title, subtitle, actions, children }: { title: string; subtitle?: ReactNode; actions?: ReactNode; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · FLIP`;
  }, [title]);
  return (
    <section className="page" aria-labelledby="page-title">
      <header className="page-header">
        <div>
          <h1 id="page-title">{title}</h1>
          {subtitle ? <p className="page-subtitle">{subtitle}</p> : null}
        </div>
        {actions ? <div className="page-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** A titled block inside a page. */
export function Panel({ title, actions, children, id }: { title: string; actions?: ReactNode; children: ReactNode; id?: string }) {
  const headingId = `${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-heading`;
  return (
    <section className="panel" aria-labelledby={headingId}>
      <header className="panel-header">
        <h2 id={headingId}>{title}</h2>
        {actions ? <div className="panel-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** A failed call, said so that a person can act on it; nothing when there is no error. */
export function ErrorMessage({ error, prefix }: { error: unknown; prefix?: string }) {
  if (error === undefined || error === null) return null;
  return (
    <p className="error" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {errorText(error)}
    </p>
  );
}

/** Shown while the first load of a block runs; it takes the room the block will, so nothing jumps. */
export function Loading({ label = "Loading…", minHeight = "6rem" }: { label?: string; minHeight?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite" style={{ minHeight }}>
      {label}
    </div>
  );
}

export type Tone = "neutral" | "good" | "warn" | "bad" | "info";

/** A state in words with a colour that repeats them (never colour alone). */
export function Badge({ tone = "neutral", children, title }: { tone?: Tone; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

/** A polite live region: screen readers hear what changed (an answer arrived, a round ended). */
export function LiveStatus({ children }: { children: ReactNode }) {
  return (
    <p className="live-status" role="status" aria-live="polite">
      {children}
    </p>
  );
}
