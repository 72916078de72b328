import { useState, type DependencyList } from "react";
import { readFirstRows, type PageOf, type PageRequest } from "./first-rows.js";
import { useLoad } from "./use-load.js";

export interface ShownRows<T> {
  /** The rows shown; kept while reloading so the page does not jump. Undefined until the first load. */
  rows: T[] | undefined;
  /** Rows remain after those shown. */
  more: boolean;
  showMore: () => void;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * A list that starts with `step` rows and grows by `step` with showMore(), as far as the list goes. Newest-first
 * lists stay whole from the top, so a reload (or a row that must be on screen, like a project's latest
 * query) never depends on which page is showing.
 */
export function useShowMore<T>(readPage: (page: PageRequest, signal: AbortSignal) => Promise<PageOf<T>>, deps: DependencyList, step: number): ShownRows<T> {
  const [limit, setLimit] = useState(step);
  const list = useLoad((signal) => readFirstRows((page) => readPage(page, signal), limit), [...deps, limit]);
  return {
    rows: list.data?.rows,
    more: list.data?.more ?? false,
    showMore: () => setLimit((l) => l + step),
    error: list.error,
    loading: list.loading,
    reload: list.reload,
  };
}

/** The "Show more …" button under a list, while rows remain. */
export function ShowMoreButton({ list, label, className }: { list: ShownRows<unknown>; label: string; className?: string }) {
  if (!list.more) return null;
  return (
    <p className={className}>
      <button type="button" className="button button-small" disabled={list.loading} onClick={list.showMore}>
        {label}
      </button>
    </p>
  );
}
