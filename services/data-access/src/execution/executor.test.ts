import test from "ava";
import pg from "pg";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { LOCAL_SCHEMA } from "../cohorts/local-store.js";
import { createOmopFixture, type OmopFixture } from "../testing/omop-fixture.js";
import { DatabaseUnavailableError, DataDependentFailureError, QueryFailedError, ResultTooLargeError, StatementTimeoutError } from "./errors.js";
import { createReaderPool, ReadOnlyExecutor } from "./executor.js";
import { assertReaderIsReadOnly, ReaderRoleTooPowerfulError } from "./reader-role.js";

let fx: OmopFixture;
let executor: ReadOnlyExecutor;

test.before(async () => {
  fx = await createOmopFixture({ persons: 300, seed: 3 });
  executor = new ReadOnlyExecutor(fx.reader, { statementTimeoutMs: 5_000, maxRows: 1_000 });
});

test.after.always(async () => {
  await fx?.close();
});

const refusal = async (work: Promise<unknown>) => {
  const e = await work.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof QueryFailedError)) throw new Error(`expected QueryFailedError, got ${String(e)}`);
  return e;
};

test("the database refuses writes through the executor even when validation is bypassed", async (t) => {
  for (const sql of [
    "insert into omop.person (person_id, gender_concept_id, year_of_birth, race_concept_id, ethnicity_concept_id) values (999999, 8507, 1980, 0, 0)",
    "delete from omop.person",
    "update omop.measurement set value_as_number = 0",
    "create table omop.stolen as select * from omop.person",
    "truncate omop.death",
  ]) {
    const e = await refusal(executor.readOnly((tx) => tx.query(sql)));
    t.true(e.refusedByDatabase, `${sql} → ${e.sqlState}`);
  }
  const { rows } = await fx.owner.query("select count(*)::int as n from omop.person");
  t.is(rows[0].n, 300);
});

test("the reader role cannot write even in a read-write transaction it opens itself", async (t) => {
  const client = new pg.Client({ connectionString: fx.readerUrl });
  await client.connect();
  try {
    await client.query("begin read write");
    const e = await client.query("delete from omop.person").then(
      () => undefined,
      (err: unknown) => err as { code?: string },
    );
    t.is(e?.code, "42501");
  } finally {
    await client.end();
  }
});

test("the reader role cannot read the trust's frozen cohorts", async (t) => {
  const e = await refusal(executor.query(`select * from ${LOCAL_SCHEMA}.frozen_cohort_person`));
  t.is(e.sqlState, "42501");
});

test("a query that runs past the statement timeout fails with StatementTimeoutError", async (t) => {
  const quick = new ReadOnlyExecutor(fx.reader, { statementTimeoutMs: 200, maxRows: 1_000 });
  const e = await t.throwsAsync(quick.query("select count(*) from generate_series(1, 1000000000)"), { instanceOf: StatementTimeoutError });
  t.is(e?.timeoutMs, 200);
});

test("a result larger than the row cap is refused rather than loaded", async (t) => {
  await t.throwsAsync(executor.query("select * from omop.measurement"), { instanceOf: ResultTooLargeError });
  const ok = await executor.query("select person_id from omop.person order by person_id limit 1000");
  t.is(ok.rows.length, 300);
});

test("values come back as PostgreSQL text, and columns know the table column they read", async (t) => {
  const r = await executor.query("select p.person_id as pid, 12345678901234567::bigint as big, date '2020-02-03' as d, 1.50::numeric as n from omop.person p order by 1 limit 1");
  t.deepEqual(r.rows, [["1", "12345678901234567", "2020-02-03", "1.50"]]);
  t.is(r.columns[0]?.name, "pid");
  t.is(r.columns[0]?.sourceColumn, "person_id");
  t.is(r.columns[1]?.sourceColumn, undefined);
});

test("an error raised while reading rows is a DataDependentFailureError that echoes nothing", async (t) => {
  const failures = [
    ["select cast(person_source_value as integer) from omop.person", "22P02"],
    ["select 1 / (person_id - 150) from omop.person", "22012"],
    ["select (select person_id from omop.person where year_of_birth > 0)", "21000"],
  ] as const;
  for (const [sql, sqlState] of failures) {
    const e = await t.throwsAsync(executor.query(sql), { instanceOf: DataDependentFailureError });
    t.is(e?.sqlState, sqlState);
    t.is(e?.message, "the query failed while reading the trust's data");
  }
});

test("an error found while planning, before any row is read, keeps PostgreSQL's message", async (t) => {
  const e = await refusal(executor.query("select no_such_column from omop.person"));
  t.is(e.sqlState, "42703");
  t.regex(e.message, /column "no_such_column" does not exist/);
});

test("the timeout message states the trust's limit in seconds", (t) => {
  t.regex(new StatementTimeoutError(30_000).message, /^the query ran longer than the trust's 30 s limit/);
  t.regex(new StatementTimeoutError(1_500).message, /^the query ran longer than the trust's 1500 ms limit/);
});

test("rows stream in batches, and stopping early releases the connection", async (t) => {
  const pool = createReaderPool(fx.readerUrl, 1);
  const own = new ReadOnlyExecutor(pool, executor.options);
  let batches = 0;
  try {
    for await (const batch of own.batches("select person_id from omop.person order by person_id", [], 100)) {
      batches++;
      t.true(batch.rows.length <= 100);
      if (batches === 2) break;
    }
    t.is(batches, 2);
    t.is(pool.idleCount, pool.totalCount);
  } finally {
    await pool.end();
  }
  const all: string[] = [];
  for await (const batch of executor.batches("select person_id from omop.person where person_id = any($1::bigint[]) order by 1", [["1", "2", "3"]], 2)) {
    all.push(...batch.rows.map((r) => r[0]!));
  }
  t.deepEqual(all, ["1", "2", "3"]);
});

test("an unreachable database is reported as DatabaseUnavailableError", async (t) => {
  const port = await freePort();
  const pool = createReaderPool(`postgres://nobody:x@127.0.0.1:${port}/none`, 1);
  try {
    const down = new ReadOnlyExecutor(pool, { statementTimeoutMs: 1_000, maxRows: 10 });
    await t.throwsAsync(down.query("select 1"), { instanceOf: DatabaseUnavailableError });
  } finally {
    await pool.end();
  }
});

test("a reader URL with more than read access is refused at start-up", async (t) => {
  await t.notThrowsAsync(assertReaderIsReadOnly(fx.reader, LOCAL_SCHEMA));
  const e = await t.throwsAsync(assertReaderIsReadOnly(fx.owner, LOCAL_SCHEMA), { instanceOf: ReaderRoleTooPowerfulError });
  t.regex(e?.message ?? "", /is a superuser/);
});
