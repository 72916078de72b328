import type pg from "pg";

/**
 * Ends a pg pool and waits until its connections are really closed. `pool.end()` resolves once every
 * client was told to close, while their sockets may still be open; stopping or dropping the database
 * right after would make those clients fail with "terminating connection due to administrator
 * command". Clients still checked out close when released. Gives up waiting after `timeoutMs`.
 */
export async function closePool(pool: pg.Pool, timeoutMs = 5_000): Promise<void> {
  let open = pool.totalCount;
  const closed =
    open === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          timer.unref();
          pool.on("remove", () => {
            if (--open > 0) return;
            clearTimeout(timer);
            resolve();
          });
        });
  await pool.end();
  await closed;
}
