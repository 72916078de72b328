import test from "ava";
import pg from "pg";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { generateOmop } from "./generate.js";
import { applyOmopSchema, READER_ROLE } from "./schema.js";

let db: TestDatabase;

test.before(async () => {
  db = await createTestDatabase("gen");
});

test.after.always(async () => {
  await db?.drop();
});

test("5,000 persons load, and loading again replaces the data rather than adding to it", async (t) => {
  const started = Date.now();
  const summary = await generateOmop(db.url, { seed: 1, persons: 5000, profile: "north" });
  const elapsed = Date.now() - started;
  t.log(`loaded ${Object.values(summary.rows).reduce((s, n) => s + n, 0)} rows in ${elapsed} ms`);
  t.is(summary.rows.person, 5000);
  const again = await generateOmop(db.url, { seed: 1, persons: 5000, profile: "north" });
  t.deepEqual(again.rows, summary.rows);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query("select (select count(*) from omop.person)::int as persons, (select count(*) from omop.image_occurrence where accession_id like 'ACCNORTH%')::int as images");
    t.is(rows[0].persons, 5000);
    t.is(rows[0].images, summary.rows.image_occurrence);
  } finally {
    await client.end();
  }
});

test("the schema can be applied repeatedly and the reader role may only read omop", async (t) => {
  await applyOmopSchema(db.url);
  await t.notThrowsAsync(applyOmopSchema(db.url));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select bool_and(has_table_privilege($1, c.oid, 'SELECT')) as reads,
              bool_or(has_table_privilege($1, c.oid, 'INSERT') or has_table_privilege($1, c.oid, 'UPDATE') or has_table_privilege($1, c.oid, 'DELETE')) as writes,
              has_schema_privilege($1, 'omop', 'CREATE') as creates
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'omop' and c.relkind = 'r'`,
      [READER_ROLE],
    );
    t.deepEqual(rows[0], { reads: true, writes: false, creates: false });
  } finally {
    await client.end();
  }
});
