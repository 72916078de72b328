import { useEffect, useRef, useState, type ReactNode } from "react";

/**
 * A secret the hub returns exactly once (a trust's API key, a generated password), in a modal with a copy
 * button and what to do with it. Closing it is the last chance to see the secret.
 */
export function ShownOnceDialog({
  title,
  secretLabel,
  secret,
  onClose,
  children,
}: {
  title: string;
  /** What the secret is, e.g. "API key for north". */
  secretLabel: string;
  /** Shown (and the dialog open) while defined. */
  secret: string | undefined;
  onClose: () => void;
  /** Where the secret goes. */
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const codeRef = useRef<HTMLElement>(null);
  const [copied, setCopied] = useState<string>("");
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (secret !== undefined && !d.open) {
      setCopied("");
      d.showModal();
    }
    if (secret === undefined && d.open) d.close();
  }, [secret]);

  const copy = async () => {
    if (secret === undefined) return;
    try {
      await navigator.clipboard.writeText(secret);
      setCopied("Copied to the clipboard.");
    } catch {
      // No clipboard access (a page not served over HTTPS, or refused): select it for Ctrl+C instead.
      const node = codeRef.current;
      const selection = window.getSelection();
      if (node && selection) {
        const range = document.createRange();
        range.selectNodeContents(node);
        selection.removeAllRanges();
        selection.addRange(range);
      }
      setCopied("The browser did not allow copying; the text is selected: press Ctrl+C (⌘C on a Mac).");
    }
  };

  return (
    <dialog ref={ref} className="dialog admin-dialog" aria-labelledby="shown-once-title" onCancel={(e) => (e.preventDefault(), onClose())}>
      <div className="admin-dialog-body">
        <h2 id="shown-once-title">{title}</h2>
        <p className="notice">
          <strong>Shown once.</strong> The hub keeps only a hash of it and cannot show it again; if it is lost, issue a new one.
        </p>
        <code ref={codeRef} className="secret admin-secret" aria-label={secretLabel}>
          {secret}
        </code>
        {children}
        <p className="live-status" role="status" aria-live="polite">
          {copied}
        </p>
        <div className="dialog-actions">
          <button type="button" className="button" onClick={() => void copy()}>
            Copy
          </button>
          <button type="button" className="button button-primary" onClick={onClose}>
            Done, I have stored it
          </button>
        </div>
      </div>
    </dialog>
  );
}
