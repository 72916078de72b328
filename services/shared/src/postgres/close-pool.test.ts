import { randomBytes } from "node:crypto";
import test from "ava";
import pg from "pg";
import { createTestDatabase } from "../testing/postgres.js";
import { closePool } from "./close-pool.js";

test("closePool returns only once the pool's connections have ended, not merely been asked to", async (t) => {
  const db = await createTestDatabase("close_pool");
  t.teardown(() => db.drop());
  const app = `close-pool-${randomBytes(4).toString("hex")}`;
  const pool = new pg.Pool({ connectionString: db.url, max: 4, application_name: app });
  let opened = 0;
  let ended = 0;
  pool.on("connect", (client) => {
    opened++;
    client.on("end", () => ended++);
  });
  // Three connections, idle when the pool is closed (pool.end() alone resolves before they have ended).
  await Promise.all([1, 2, 3].map(() => pool.query("select pg_sleep(0.05)")));
  const observer = new pg.Client({ connectionString: db.url });
  await observer.connect();
  t.teardown(() => observer.end());
  const connected = async () => (await observer.query<{ n: number }>("select count(*)::int as n from pg_stat_activity where application_name = $1", [app])).rows[0]!.n;
  t.is(await connected(), 3);

  await closePool(pool);
  t.is(ended, opened, "every connection has ended, not merely been asked to");
  t.is(await connected(), 0);
});
