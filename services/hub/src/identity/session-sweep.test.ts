import anyTest, { type TestFn } from "ava";
import { randomUUID } from "node:crypto";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { sweepEndedSessions } from "./session-sweep.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const tdb = await createTestDatabase("session_sweep");
  t.context = { tdb, db: await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" })) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

const DAY_MS = 86_400_000;
const daysAgo = (d: number) => new Date(Date.now() - d * DAY_MS);

/** A session of a fresh user, with one refresh token; returns the session id. */
async function session(db: Database, at: { expiresAt: Date; revokedAt?: Date }): Promise<string> {
  const em = db.em();
  const userId = randomUUID();
  await em.execute("insert into app_user (id, email, email_key, name, created_at) values (?, ?, ?, 'sweep test', now())", [userId, `${userId}@example.org`, `${userId}@example.org`]);
  const id = randomUUID();
  await em.execute("insert into user_session (id, user_id, created_at, expires_at, revoked_at) values (?, ?, ?, ?, ?)", [
    id,
    userId,
    daysAgo(90),
    at.expiresAt,
    at.revokedAt ?? null,
  ]);
  await em.execute("insert into refresh_token (id, session_id, key_id, secret_hash, created_at, expires_at, rotated_at) values (?, ?, ?, 'x', ?, ?, ?)", [
    randomUUID(),
    id,
    randomUUID(),
    daysAgo(90),
    at.expiresAt,
    daysAgo(60),
  ]);
  return id;
}

test("sessions that ended before the retention period go with their refresh tokens; open and recently ended ones stay", async (t) => {
  const { db } = t.context;
  const open = await session(db, { expiresAt: new Date(Date.now() + DAY_MS) });
  const expiredLongAgo = await session(db, { expiresAt: daysAgo(40) });
  const expiredRecently = await session(db, { expiresAt: daysAgo(5) });
  // Revoked long ago although it would have run for a while yet: it ended when it was revoked.
  const revokedLongAgo = await session(db, { expiresAt: new Date(Date.now() + DAY_MS), revokedAt: daysAgo(31) });
  const revokedRecently = await session(db, { expiresAt: new Date(Date.now() + DAY_MS), revokedAt: daysAgo(1) });

  t.is(await sweepEndedSessions(db.em(), 30 * 86_400), 2);
  const left = (await db.em().execute<{ id: string }[]>("select id from user_session")).map((r) => r.id);
  t.deepEqual(new Set(left), new Set([open, expiredRecently, revokedRecently]));
  t.false(left.includes(expiredLongAgo));
  t.false(left.includes(revokedLongAgo));
  const tokens = await db.em().execute<{ session_id: string }[]>("select session_id from refresh_token");
  t.deepEqual(new Set(tokens.map((r) => r.session_id)), new Set(left), "refresh tokens of deleted sessions are deleted too; rotated ones of open sessions stay");
  t.is(await sweepEndedSessions(db.em(), 30 * 86_400), 0, "a second sweep finds nothing");
});
