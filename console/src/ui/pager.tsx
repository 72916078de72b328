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

/**
 * Where a list is in the hub's cursor paging: the tokens of the pages visited, so Previous needs no extra
 * call. A new `filter` (the list's filter, in words) starts again from the first page.
 */
export function usePager(filter = ""): Pager {
  const [paging, setPaging] = useState({ filter, tokens: [""] });
  const tokens = paging.filter === filter ? paging.tokens : [""];
  const change = useCallback((f: (ts: string[]) => string[]) => setPaging((p) => ({ filter, tokens: f(p.filter === filter ? p.tokens : [""]) })), [filter]);
  const next = useCallback((t: string) => change((ts) => (t ? [...ts, t] : ts)), [change]);
  const previous = useCallback(() => change((ts) => (ts.length > 1 ? ts.slice(0, -1) : ts)), [change]);
  const reset = useCallback(() => change(() => [""]), [change]);
  return { token: tokens[tokens.length - 1] ?? "", number: tokens.length, next, previous, reset };
}

/** Previous / next buttons under a list, with the page number; a newest-first list may call them Newer / Older. */
export function PagerControls({
  pager,
  nextPageToken,
  label,
  busy,
  words = { previous: "Previous page", next: "Next page" },
}: {
  pager: Pager;
  nextPageToken: string | undefined;
  label: string;
  busy?: boolean;
  words?: { previous: string; next: string };
}) {
  if (pager.number === 1 && !nextPageToken) return null;
  return (
    <nav className="pager" aria-label={`${label} pages`}>
      <button type="button" className="button button-small" disabled={pager.number === 1 || busy} onClick={pager.previous}>
        {words.previous}
      </button>
      <span>Page {pager.number}</span>
      <button type="button" className="button button-small" disabled={!nextPageToken || busy} onClick={() => nextPageToken && pager.next(nextPageToken)}>
        {words.next}
      </button>
    </nav>
  );
}
