/** The most rows the hub returns in one page; a longer list is read as several pages, following page tokens. */
export const HUB_MAX_PAGE_SIZE = 500;

export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

export interface PageOf<T> {
  rows: T[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/**
 * The first `limit` rows of a list the hub pages, in as few calls as its page size allows (one up to 500
 * rows), and whether any remain after them.
 */
export async function readFirstRows<T>(readPage: (page: PageRequest) => Promise<PageOf<T>>, limit: number): Promise<{ rows: T[]; more: boolean }> {
  const rows: T[] = [];
  let pageToken = "";
  do {
    const page = await readPage({ pageSize: Math.min(HUB_MAX_PAGE_SIZE, limit - rows.length), pageToken });
    rows.push(...page.rows);
    pageToken = page.rows.length === 0 ? "" : page.nextPageToken;
  } while (pageToken && rows.length < limit);
  return { rows, more: pageToken !== "" };
}
