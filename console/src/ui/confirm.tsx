import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { ErrorMessage } from "./page.js";

/**
 * A modal question (the native <dialog>: focus is trapped, Escape cancels). `children` is the body, e.g.
 * a reason field; the confirm button submits the dialog's form.
 */
export function ConfirmDialog({
  open,
  title,
  confirmLabel,
  danger,
  busy,
  onConfirm,
  onCancel,
  children,
}: {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  children?: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  // Unique per dialog: a page may hold several, and each is named by its own title.
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId} onCancel={(e) => (e.preventDefault(), onCancel())}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          onConfirm();
        }}
      >
        <h2 id={titleId}>{title}</h2>
        {children}
        <div className="dialog-actions">
          <button type="button" className="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className={`button ${danger ? "button-danger" : "button-primary"}`} disabled={busy}>
            {confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/**
 * A button that asks first: it opens a dialog, and confirming runs `action` (which leads on, e.g. navigates,
 * when it succeeds). While it runs the dialog is busy; a failure shows in the dialog under `errorPrefix`,
 * so the person can try again or cancel.
 */
export function ConfirmedActionButton({
  label,
  tone,
  title,
  confirmLabel,
  busyLabel,
  errorPrefix,
  action,
  children,
}: {
  label: string;
  tone: "primary" | "danger";
  title: string;
  confirmLabel: string;
  busyLabel?: string;
  errorPrefix: string;
  action: () => Promise<unknown>;
  children?: ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button type="button" className={`button button-${tone}`} onClick={() => setOpen(true)}>
        {label}
      </button>
      <ConfirmDialog
        open={open}
        title={title}
        confirmLabel={busy && busyLabel ? busyLabel : confirmLabel}
        danger={tone === "danger"}
        busy={busy}
        onCancel={() => {
          setOpen(false);
          setError(undefined);
        }}
        onConfirm={() => {
          setBusy(true);
          setError(undefined);
          action().catch((e: unknown) => {
            setError(e);
            setBusy(false);
          });
        }}
      >
        {children}
        <ErrorMessage error={error} prefix={errorPrefix} />
      </ConfirmDialog>
    </>
  );
}
