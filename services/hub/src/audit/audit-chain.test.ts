import anyTest, { type ExecutionContext, type TestFn } from "ava";
import { MikroORM } from "@mikro-orm/postgresql";
import { Migrator } from "@mikro-orm/migrations";
import pg from "pg";
import { createLogger } from "@flip/shared/logging/logger.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { entities } from "../db/entities.js";
import { migrations } from "../db/migrations/index.js";
import { appendAudit, entryHash, GENESIS_HASH } from "./chain.js";
import { AuditSequencer, chainAppendedEntries } from "./sequencer.js";
import { verifyAuditChain } from "./verify.js";

const test = anyTest as TestFn<unknown>;
const log = createLogger({ service: "test", level: "silent" });

/** A database of its own for one test (these tests count and break the whole chain). */
async function freshDatabase(t: ExecutionContext): Promise<{ tdb: TestDatabase; db: Database; sql: pg.Client }> {
  const tdb = await createTestDatabase("audit");
  const db = await openDatabase(tdb.url, log);
  const sql = new pg.Client({ connectionString: tdb.url });
  await sql.connect();
  t.teardown(async () => {
    await sql.end();
    await db.close();
    await tdb.drop();
  });
  return { tdb, db, sql };
}

const entry = (actor: string, n = 0) => ({ actor, action: "test.appended", target: `thing:${n}`, after: { n } });

async function appendEach(db: Database, actors: string[]): Promise<void> {
  for (const actor of actors) await db.em().transactional((tx) => appendAudit(tx, entry(actor)));
}

/** Resolves when `parties` have arrived; rejects as soon as one of them fails. */
function barrier(parties: number) {
  let arrived = 0;
  let arrive!: () => void;
  let fail!: (e: unknown) => void;
  const all = new Promise<void>((resolve, reject) => {
    arrive = () => void (++arrived === parties && resolve());
    fail = reject;
  });
  return { arrive, fail, all };
}

test("entries appended by many concurrent transactions are chained in the background into one valid chain, each committed entry once", async (t) => {
  const { db, sql } = await freshDatabase(t);
  const sequencer = new AuditSequencer(db, log, 60_000);
  await sequencer.start();
  t.teardown(() => sequencer.stop());

  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, w) =>
      db.em().transactional(async (tx) => {
        for (let i = 0; i < 10; i++) await appendAudit(tx, entry(`writer-${w}`, i));
        if (w === 7) throw new Error("this writer's change failed");
      }),
    ),
  );
  t.is(results.filter((r) => r.status === "rejected").length, 1);

  // No reader has asked: the sequencer chains them because their commits notified it.
  await eventually(
    async () => (await sql.query<{ n: number }>("select count(*)::int as n from audit_entry where seq is null")).rows[0]!.n,
    (unchained) => unchained === 0,
    { what: "every committed entry chained by the background sequencer" },
  );
  const { rows } = await sql.query<{ actor: string; seq: string }>("select actor, seq from audit_entry order by seq");
  t.is(rows.length, 190);
  t.deepEqual(rows.map((r) => Number(r.seq)), Array.from({ length: 190 }, (_, i) => i + 1), "each entry has one place, with no gaps");
  t.false(rows.some((r) => r.actor === "writer-7"), "the rolled-back writer's entries are not in the log");
  t.deepEqual(await verifyAuditChain(db.em()), { ok: true, entriesChecked: 190 });
});

test("a transaction's append does not wait for another open transaction's append", async (t) => {
  const { db } = await freshDatabase(t);
  const both = barrier(2);
  const appendThenWait = (actor: string) =>
    db.em().transactional(async (tx) => {
      // Were appends serialised, the second would wait for the first to commit, which waits for the second.
      await tx.execute("set local lock_timeout = '5s'");
      try {
        await appendAudit(tx, entry(actor));
      } catch (e) {
        both.fail(e);
        throw e;
      }
      both.arrive();
      await both.all;
    });
  await Promise.all([appendThenWait("first"), appendThenWait("second")]);
  t.deepEqual(await verifyAuditChain(db.em()), { ok: true, entriesChecked: 2 });
});

test("verifying chains what was appended just before, and names an altered, removed or re-pointed entry", async (t) => {
  const { db, sql } = await freshDatabase(t);
  await appendEach(db, ["a", "b", "c", "d", "e"]);
  t.deepEqual(await verifyAuditChain(db.em()), { ok: true, entriesChecked: 5 });

  // A database superuser can bypass the trigger, but not hide what they did.
  await sql.query("alter table audit_entry disable trigger audit_entry_no_update");
  await sql.query("update audit_entry set actor = 'mallory' where seq = 3");
  t.like(await verifyAuditChain(db.em()), { ok: false, entriesChecked: 2, firstBrokenSeq: 3, problem: "entry 3 was altered (hash mismatch)" });
  await sql.query("update audit_entry set actor = 'c' where seq = 3");
  t.true((await verifyAuditChain(db.em())).ok);

  const [second] = (await sql.query<{ hash: string }>("select hash from audit_entry where seq = 2")).rows;
  const [fourth] = (await sql.query<{ prev_hash: string }>("select prev_hash from audit_entry where seq = 4")).rows;
  await sql.query("update audit_entry set prev_hash = $1 where seq = 4", [second!.hash]);
  t.like(await verifyAuditChain(db.em()), { ok: false, firstBrokenSeq: 4, problem: "entry 4 does not point at entry 3" });
  await sql.query("update audit_entry set prev_hash = $1 where seq = 4", [fourth!.prev_hash]);

  await sql.query("delete from audit_entry where seq = 2");
  t.like(await verifyAuditChain(db.em()), { ok: false, entriesChecked: 1, firstBrokenSeq: 2, problem: "entry 2 is missing" });
  await sql.query("alter table audit_entry enable trigger audit_entry_no_update");
});

test("the trigger lets the sequencer chain an entry once and refuses every other update and every delete", async (t) => {
  const { db, sql } = await freshDatabase(t);
  await appendEach(db, ["chained"]);
  await chainAppendedEntries(db.em());
  await appendEach(db, ["unchained"]);
  const ids = Object.fromEntries((await sql.query<{ id: string; actor: string }>("select id, actor from audit_entry")).rows.map((r) => [r.actor, r.id]));
  const refused = (query: string, params: unknown[]) => t.throwsAsync(sql.query(query, params), { message: "audit_entry is append-only" });

  await refused("update audit_entry set actor = 'mallory' where id = $1", [ids.chained]);
  await refused("update audit_entry set after_json = '{}' where id = $1", [ids.unchained]);
  await refused("update audit_entry set seq = 7, prev_hash = $2, hash = $2 where id = $1", [ids.chained, GENESIS_HASH]);
  await refused("update audit_entry set seq = 2, prev_hash = $2, hash = $2, target = 'elsewhere' where id = $1", [ids.unchained, GENESIS_HASH]);
  await refused("delete from audit_entry where id = $1", [ids.chained]);
  await refused("delete from audit_entry where id = $1", [ids.unchained]);

  t.is(await chainAppendedEntries(db.em()), 1);
  t.deepEqual(await verifyAuditChain(db.em()), { ok: true, entriesChecked: 2 });
});

test("entries chained before the upgrade keep their order and chain, and new entries continue it", async (t) => {
  const tdb = await createTestDatabase("audit");
  const orm = await MikroORM.init({
    clientUrl: tdb.url,
    entities,
    extensions: [Migrator],
    migrations: { migrationsList: migrations, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    allowGlobalContext: false,
  });
  t.teardown(async () => {
    await orm.close(true);
    await tdb.drop();
  });
  await orm.migrator.up({ to: "m0006-governance" });
  let prevHash = GENESIS_HASH;
  const em = orm.em.fork();
  for (const [i, actor] of ["old-1", "old-2", "old-3"].entries()) {
    const content = { seq: i + 1, at: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(), actor, action: "test.old", target: "thing:old", beforeJson: null, afterJson: null };
    const hash = entryHash(prevHash, content);
    await em.execute("insert into audit_entry (seq, at, actor, action, target, before_json, after_json, prev_hash, hash) values (?, ?, ?, ?, ?, null, null, ?, ?)", [
      content.seq,
      content.at,
      actor,
      content.action,
      content.target,
      prevHash,
      hash,
    ]);
    prevHash = hash;
  }
  await orm.migrator.up();

  await orm.em.fork().transactional((tx) => appendAudit(tx, entry("new")));
  t.deepEqual(await verifyAuditChain(orm.em.fork()), { ok: true, entriesChecked: 4 });
  const rows = await orm.em.fork().execute<{ id: string; seq: string; actor: string }[]>("select id, seq, actor from audit_entry order by id");
  t.deepEqual(
    rows.map((r) => [Number(r.id), Number(r.seq), r.actor]),
    [
      [1, 1, "old-1"],
      [2, 2, "old-2"],
      [3, 3, "old-3"],
      [4, 4, "new"],
    ],
  );
});
