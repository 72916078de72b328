import pg from "pg";

/**
 * For tests: counts the SQL statements this process sends to PostgreSQL while `body` runs, by wrapping
 * pg's Client (which MikroORM's driver uses), so "one query per page, not per item" can be asserted.
 * Counts every client in the process: run it only where nothing else queries concurrently.
 */
export async function countQueries<T>(body: () => Promise<T>): Promise<{ result: T; queries: number }> {
  const original = pg.Client.prototype.query;
  let queries = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    queries++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    return { result: await body(), queries };
  } finally {
    pg.Client.prototype.query = original;
  }
}
