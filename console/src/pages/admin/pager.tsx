import { useCallback, useState } from "react";

export interface Pager {
  /** The page token to ask for now ("" for the first page). */
  token: string;
  /** 1 for the first page. */
  number: number;
  next: (nextPageToken: string) => void;
  previous: () => void;
  /** Back to the first page (after a filter changed). */
  reset: () => void;
}

/** Where a list is in the hub's cursor paging: the tokens of the pages visited, so Previous needs no extra call. */
export function usePager(): Pager {
  const [tokens, setTokens] = useState<string[]>([""]);
  const next = useCallback((t: string) => setTokens((ts) => (t ? [...ts, t] : ts)), []);
  const previous = useCallback(() => setTokens((ts) => (ts.length > 1 ? ts.slice(0, -1) : ts)), []);
  const reset = useCallback(() => setTokens([""]), []);
  return { token: tokens[tokens.length - 1] ?? "", number: tokens.length, next, previous, reset };
}

/** Previous / next buttons under a list, with the page number. */
export function PagerControls({ pager, nextPageToken, label, busy }: { pager: Pager; nextPageToken: string | undefined; label: string; busy?: boolean }) {
  if (pager.number === 1 && !nextPageToken) return null;
  return (
    <nav className="admin-pager" aria-label={`${label} pages`}>
      <button type="button" className="button button-small" disabled={pager.number === 1 || busy} onClick={pager.previous}>
        Previous page
      </button>
      <span>Page {pager.number}</span>
      <button type="button" className="button button-small" disabled={!nextPageToken || busy} onClick={() => nextPageToken && pager.next(nextPageToken)}>
        Next page
      </button>
    </nav>
  );
}
