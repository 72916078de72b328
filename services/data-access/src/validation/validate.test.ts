import test from "ava";
import { QueryRejectedError, type RejectionRule } from "./rejection.js";
import { MAX_QUERY_LENGTH, validateQuery } from "./validate.js";

/** Hostile or broken queries, by the rule that must refuse them. */
const HOSTILE: Record<Exclude<RejectionRule, "person_id_required">, string[]> = {
  parse_error: [
    "selec * from person",
    "select * from person where",
    "select 'unterminated",
    "select * from person;;drop",
    "select $$unterminated",
    "/* unterminated comment select 1",
    "select * from person where person_id = 1 or",
    "DO $$ BEGIN PERFORM 1; END",
    'select * from "person',
    "select ) from person",
    "select 1 /* select 2",
  ],
  single_statement: [
    "",
    "   \n\t ",
    "-- just a comment",
    "/* nothing */",
    ";",
    "select 1; select 2",
    "select * from person; drop table omop.person",
    'select * from "omop"."person"; drop table person',
    "select 1;delete from person",
    "select * from person /* ; */ ; select * from death",
    "select 1; commit",
    "select $$;$$ ; select 2",
    "select 1;;select 2",
    "select * from person where $tag$ $$ $tag$ = 'a'; drop table person",
  ],
  no_writes: [
    "insert into person (person_id) values (1)",
    "update person set year_of_birth = 1900",
    "delete from person",
    "merge into person p using death d on p.person_id = d.person_id when matched then delete",
    "with x as (delete from omop.person returning person_id) select * from x",
    "with x as (update omop.person set year_of_birth = 0 returning *) select count(*) from x",
    "with x as (insert into omop.death (person_id, death_date) values (1, now()) returning *) select * from x",
    "with a as (select 1), b as (delete from omop.death returning 1) select * from a",
    "select * from (with d as (delete from omop.person returning *) select * from d) s",
    "insert into omop.person select * from omop.person",
    "update omop.measurement set value_as_number = 0 where measurement_id in (select 1)",
    "delete from omop.person using omop.death where person.person_id = death.person_id",
    "with recursive r as (select 1) delete from person",
    "merge into omop.person t using (select 1 as id) s on t.person_id = s.id when not matched then insert (person_id) values (s.id)",
    "explain analyze delete from person",
    "copy (delete from omop.person returning *) to stdout",
  ],
  select_only: [
    "create table omop.x (a int)",
    "drop table omop.person",
    "alter table omop.person add column x int",
    "truncate omop.person",
    "copy omop.person to '/tmp/x'",
    "copy (select * from omop.person) to stdout",
    "copy omop.person from program 'id'",
    "set search_path = public",
    "set role postgres",
    "reset role",
    "set local statement_timeout = 0",
    "set session authorization postgres",
    "show search_path",
    "explain select * from person",
    "begin",
    "commit",
    "rollback",
    "start transaction read write",
    "DO $$ BEGIN DELETE FROM omop.person; END $$",
    "call some_procedure()",
    "listen foo",
    "notify foo, 'x'",
    "unlisten *",
    "prepare q as select 1",
    "execute q",
    "deallocate all",
    "declare c cursor for select * from person",
    "fetch all from c",
    "lock table omop.person",
    "vacuum omop.person",
    "analyze omop.person",
    "grant select on omop.person to public",
    "revoke all on omop.person from flip_cohort_reader",
    "create role evil superuser",
    "alter role flip_cohort_reader superuser",
    "create function f() returns int language sql as 'select 1'",
    "create extension dblink",
    "load 'plpgsql'",
    "discard all",
    "create table omop.x as select * from omop.person",
    "create temp table t as select 1",
    "select * into omop.copy from omop.person",
    "select * from person for update",
    "select * from person for share",
    "select * from person for no key update skip locked",
    "select * from person p join death d using (person_id) for update of p",
    "(select * from person for update) union select * from person",
    "with x as (select * from person for update) select * from x",
    "checkpoint",
    "comment on table omop.person is 'x'",
    "create index on omop.person (year_of_birth)",
    "alter system set fsync = off",
  ],
  omop_schema_only: [
    "select * from pg_catalog.pg_authid",
    "select * from pg_authid",
    "select * from pg_shadow",
    "select usename, passwd from pg_user",
    "select * from information_schema.tables",
    "select * from public.secrets",
    "select * from flip_local.frozen_cohort_person",
    'select * from "omop"."person" p join pg_catalog.pg_class c on true',
    "select * from otherdb.omop.person",
    "select * from person where person_id in (select oid from pg_class)",
    "select * from pg_stat_activity",
    'select * from "Person"',
    "select * from omop_evil.person",
    "with person as (select 1) select * from pg_roles",
    "select (select rolpassword from pg_authid limit 1)",
    "select * from person p, lateral (select * from pg_settings) s",
    "select pg_catalog.pg_authid.rolname from person",
    'select * from "OMOP"."person"',
    "select * from omop . person join public . t using (x)",
    "select * from secrets",
    "with a as (select * from b), b as (select 1) select * from a",
    "select * from (with c as (select 1) select * from c) s, c",
    "select/**/*/**/from/**/pg_authid",
    "select * from pg_catalog./**/pg_authid",
    'select * from "pg_catalog"."pg_authid"',
    'select * from "omop"."person""; drop table x; --"',
    "select * from omop.not_an_omop_table",
  ],
  function_not_allowed: [
    "select pg_read_file('/etc/passwd')",
    "select pg_catalog.pg_read_file('/etc/passwd')",
    "select pg_sleep(10)",
    "select * from person where pg_sleep(1) is not null",
    "select dblink('host=evil', 'select 1')",
    "select * from dblink('dbname=x', 'select 1') as t(a int)",
    "select set_config('role', 'postgres', false)",
    "select set_config('default_transaction_read_only', 'off', false)",
    "select lo_import('/etc/passwd')",
    "select lo_export(1, '/tmp/x')",
    "select query_to_xml('select * from pg_authid', true, true, '')",
    "select current_setting('data_directory')",
    "select txid_current()",
    "select nextval('omop.seq')",
    "select version()",
    "select pg_ls_dir('.')",
    "select pg_advisory_lock(1)",
    "select pg_terminate_backend(1)",
    "select pg_reload_conf()",
    "select current_user",
    "select session_user",
    "select pg_catalog.current_database()",
    "select count(*) from person where lower(pg_read_file('x')) = 'a'",
    "select * from generate_series(1, pg_backend_pid())",
    "select public.evil(1)",
    "select evil.lower(year_of_birth) from person",
    "select repeat('x', 1000000000)",
    'select "PG_SLEEP"(1)',
    "select * from pg_sleep(1)",
    "select count(*) filter (where pg_sleep(1) is null) from person",
    "select row_number() over (order by pg_backend_pid()) from person",
    "select * from person order by random()",
    "select to_regclass('pg_authid')",
    "select has_table_privilege('omop.person', 'insert')",
    "select inet_server_addr()",
    "select pg_stat_file('x')",
    "select array_agg(x) from unnest(string_to_array(pg_read_file('x'), ',')) x",
    "select convert_from(pg_read_binary_file('x'), 'utf8')",
    "select * from person where person_id = (select pg_sleep(1))::int",
    "select * from person where 1 = (select count(*) from dblink_exec('x'))",
  ],
  type_not_allowed: [
    "select 'pg_authid'::regclass",
    "select cast('x' as regproc)",
    "select '1'::oid",
    "select 'a'::pg_catalog.regtype",
    "select person_source_value::json from person",
    "select cast(person_id as evil.type) from person",
    "select 'select 1'::xml",
  ],
  operator_not_allowed: ["select 1 operator(public.+) 2", "select '{1}'::int[] @> '{1}'", "select 1 <-> 2", "select |/ 25", "select 1 operator(evil.=) 1"],
  literal_limit: [
    "select * from person limit (select 1)",
    "select * from person limit 1 + 1",
    "select * from person offset (select count(*) from death)",
    "select * from person limit 10.5",
    "select * from person limit -1",
    "select * from person limit pg_backend_pid()",
    "select * from person fetch first (select 1) rows only",
    "select * from person limit $1",
    "select * from (select * from person limit (select 5)) s",
  ],
  max_length: [
    `select ${"1 + ".repeat(3000)}1`,
    `select * from person where person_id in (${Array.from({ length: 3000 }, (_, i) => i).join(", ")})`,
    `/*${"a".repeat(MAX_QUERY_LENGTH)}*/ select 1`,
    `select 1 -- ${"x".repeat(MAX_QUERY_LENGTH)}`,
  ],
  unsupported_syntax: [
    "select $1",
    'select person_id collate "C" from person',
    "select (array[1,2])[1]",
    "select * from person tablesample system (10)",
    "select xmlelement(name a)",
    "select json_object('a': 1)",
    "select * from person order by person_id using <",
    "with recursive t(n) as (select 1 union all select n + 1 from t) search depth first by n set o select * from t",
    "select * from rows from (generate_series(1, 2), generate_series(1, 3))",
    "select * from person where person_id = any($1)",
    "select person_id from person group by person_id having count(*) > $1",
    `select ${"1 + ".repeat(2400)}1`,
  ],
  // Each would fail only if some patient has a given attribute: the failure itself would reveal the patient.
  data_dependent_error: [
    "select person_id, 1 / (year_of_birth - 1950) from person",
    "select count(*) from person where 1 / (person_id - 42) > 0",
    "select person_id from person where year_of_birth % (month_of_birth - 1) = 0",
    "select sum(1 / nullif(year_of_birth, 1950) / (gender_concept_id - 8507)) from person",
    "select person_id from person p where exists (select 1 from death d where d.person_id = p.person_id and 1 / (extract(year from d.death_date) - 2020) > 0)",
    "select person_id from person where 10 / case when person_id = 7 then 0 else 1 end = 10",
    "select person_id, 2 ^ year_of_birth from person",
    "select person_id from person where sqrt(year_of_birth - 1950) > 0",
    "select person_id from person where ln(person_id - 42) is not null",
    "select person_id, log(10, value_as_number) from measurement",
    "select person_id from measurement where power(value_as_number, 0.5) > 1",
    "select person_id from person where mod(10, year_of_birth - 1950) = 0",
    "select person_id from person where div(10, person_id - 42) = 0",
    "select person_id from person where to_date(person_source_value, 'YYYY') is not null",
    "select person_id from person where to_number(person_source_value, '999') > 0",
    "select person_id from person where make_date(year_of_birth, month_of_birth, day_of_birth) is not null",
    "select person_id, width_bucket(year_of_birth, 1900, 2000, gender_concept_id - 8507) from person",
    "select * from person p, lateral generate_series(1, 10, p.year_of_birth - 1950) g",
    "select person_id, ntile(year_of_birth - 1950) over () from person",
    "select percentile_cont(year_of_birth / 2000.0) within group (order by year_of_birth) from person",
    "select person_id from person where split_part('a,b', ',', person_id - 42) = 'a'",
    "select person_id from person where substr(person_source_value, 1, year_of_birth - 1950) = ''",
    "select person_id from person where person_source_value ~ person_source_value",
    "select person_id from person where 'x' like person_source_value",
    "select person_id from person where regexp_like('x', gender_source_value)",
    "select person_id from person where date_trunc(gender_source_value, birth_datetime) is null",
    "select person_id from person where 'x' similar to person_source_value",
    "select person_id from person where format(person_source_value) = ''",
  ],
};

function rejection(sql: string): QueryRejectedError | undefined {
  try {
    validateQuery(sql);
    return undefined;
  } catch (e) {
    if (e instanceof QueryRejectedError) return e;
    throw e;
  }
}

test("the hostile corpus has well over a hundred queries", (t) => {
  t.true(Object.values(HOSTILE).flat().length >= 100);
});

for (const [rule, queries] of Object.entries(HOSTILE)) {
  test(`every query in the ${rule} corpus is refused with rule ${rule}`, (t) => {
    const wrong = queries.flatMap((sql) => {
      const e = rejection(sql);
      return e?.rule === rule ? [] : [`${sql.slice(0, 120)} → ${e ? `${e.rule}: ${e.message}` : "accepted"}`];
    });
    t.deepEqual(wrong, []);
  });
}

test("a refusal names the table a researcher must change", (t) => {
  t.regex(rejection("select * from pg_catalog.pg_authid")!.message, /pg_catalog\.pg_authid/);
  t.regex(rejection("select * from person join secrets using (person_id)")!.message, /\bsecrets\b.*not an OMOP CDM table/);
});

test("a refusal names the function a researcher must change", (t) => {
  t.regex(rejection("select pg_sleep(5) from person")!.message, /function pg_sleep is not allowed/);
  t.regex(rejection("select pg_catalog.pg_read_file('x')")!.message, /pg_catalog\.pg_read_file/);
});

test("a construct that can fail on one record is refused naming the construct and its position", (t) => {
  const e = rejection("select person_id,\n  1 / (year_of_birth - 1950) from person");
  t.is(e?.rule, "data_dependent_error");
  t.regex(e?.message ?? "", /^division \(\/\) by a value that can be zero .*\(at character 23\); divide by a non-zero number literal, or by NULLIF\(x, 0\)/);
  t.regex(rejection("select ln(value_as_number) from measurement")?.message ?? "", /^ln\(\) with a value read from the data .*\(at character 8\); give its arguments as literals/);
});

test("the same constructs are accepted where the text alone fixes that they cannot fail", (t) => {
  const safe = [
    "select person_id, year_of_birth / 10 as decade, year_of_birth % 4 as leap from person",
    "select person_id, value_as_number / nullif(range_high, 0) as ratio from measurement",
    "select sqrt(2.0), ln(10), 2 ^ 10, to_date('2020-01-01', 'YYYY-MM-DD') as d",
    "select date_trunc('month', visit_start_date) as m, count(*) from visit_occurrence group by 1",
    "select percentile_cont(0.5) within group (order by year_of_birth) from person",
    "select person_id from person where person_source_value like 'A%' or person_source_value ~ '^[0-9]+$'",
    "select person_id, ntile(4) over (order by year_of_birth) from person",
    "select person_id, substring(person_source_value from 1 for 3) from person",
  ];
  for (const sql of safe) t.is(rejection(sql), undefined, sql);
});

test("a syntax error says where it is", (t) => {
  const e = rejection("select * fro person")!;
  t.is(e.rule, "parse_error");
  t.regex(e.message, /syntax error at or near "fro" \(at character 10\)/);
});

test("unqualified OMOP tables are pinned to schema omop in the normalised query", (t) => {
  const q = validateQuery("select p.person_id from person p join condition_occurrence c on c.person_id = p.person_id");
  t.is(q.normalizedSql, "SELECT p.person_id FROM (omop.person AS p INNER JOIN omop.condition_occurrence AS c ON (c.person_id = p.person_id))");
  t.deepEqual(q.tables, ["omop.condition_occurrence", "omop.person"]);
});

test("a CTE named like an OMOP table refers to the CTE, not to the table", (t) => {
  const q = validateQuery("with person as (select person_id from omop.death) select person_id from person");
  t.is(q.normalizedSql, "WITH person AS (SELECT person_id FROM omop.death) SELECT person_id FROM person");
  t.deepEqual(q.tables, ["omop.death"]);
});

test("a recursive CTE may refer to itself, and a CTE is not visible outside its query", (t) => {
  t.notThrows(() => validateQuery("with recursive n(i) as (select 1 union all select i + 1 from n where i < 5) select i from n"));
  t.is(rejection("select * from (with c as (select 1) select * from c) s join c using (x)")?.rule, "omop_schema_only");
});

test("the normalised query is stable: validating it again gives the same text", (t) => {
  const once = validateQuery("WITH d AS (SELECT person_id FROM death) SELECT count(*) FILTER (WHERE year_of_birth < 1950) FROM person WHERE person_id IN (SELECT person_id FROM d)");
  t.is(validateQuery(once.normalizedSql).normalizedSql, once.normalizedSql);
  t.is(validateQuery(once.normalizedSql).sha256, once.sha256);
});

test("comments and quoting cannot smuggle anything: harmless tricks are accepted and re-emitted as plain literals", (t) => {
  const q = validateQuery(`select person_id from "omop"."person" /* ; drop table person */ where 'x' = $$'; drop table person; --$$ or true -- ; drop`);
  t.is(q.normalizedSql, "SELECT person_id FROM omop.person WHERE (('x' = '''; drop table person; --') OR TRUE)");
  const e = validateQuery("select E'\\'; drop table person; --' as s");
  t.is(e.normalizedSql, "SELECT '''; drop table person; --' AS s");
});

test("identifiers that need quoting are quoted in the normalised query", (t) => {
  const q = validateQuery('select year_of_birth as "Year", 1 as "select" from person');
  t.is(q.normalizedSql, 'SELECT year_of_birth AS "Year", 1 AS "select" FROM omop.person');
});

test("a query at the length limit is accepted and one character more is refused", (t) => {
  const base = "select person_id from person where 'x' = '";
  const atLimit = `${base}${"x".repeat(MAX_QUERY_LENGTH - base.length - 1)}'`;
  t.is(atLimit.length, MAX_QUERY_LENGTH);
  t.notThrows(() => validateQuery(atLimit));
  t.is(rejection(`${atLimit} `)?.rule, "max_length");
});
