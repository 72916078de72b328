import { createHmac } from "node:crypto";
import pg from "pg";

/** The role cohort queries run as: USAGE on schema `omop` and SELECT on its tables, nothing else. */
export const READER_ROLE = "flip_cohort_reader";
export const OMOP_SCHEMA = "omop";

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates the reader role when it is missing (without login) and grants it read access to `omop` in the
 * current database, including tables created there later by the granting user. Idempotent.
 * Roles are cluster-wide, so several databases on one server (or tests running side by side) may race
 * to create the same role; the catalog errors of such a race are retried.
 */
export async function grantCohortReader(db: pg.ClientBase, role = READER_ROLE): Promise<void> {
  const r = checkedRole(role);
  await retryCatalogRace(async () => {
    const { rowCount } = await db.query("select 1 from pg_roles where rolname = $1", [role]);
    if (!rowCount) {
      await db.query(`create role ${r} nologin nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls`);
    }
  });
  const { rows } = await db.query<{ db: string }>("select current_database() as db");
  await retryCatalogRace(async () => {
    await db.query(`create schema if not exists ${OMOP_SCHEMA}`);
    await db.query(`grant usage on schema ${OMOP_SCHEMA} to ${r}`);
    await db.query(`grant select on all tables in schema ${OMOP_SCHEMA} to ${r}`);
    await db.query(`alter default privileges in schema ${OMOP_SCHEMA} grant select on tables to ${r}`);
    // Belt and braces: even a session that forgot BEGIN READ ONLY cannot write.
    await db.query(`alter role ${r} in database ${pg.escapeIdentifier(rows[0]!.db)} set default_transaction_read_only = on`);
  });
}

/**
 * The reader's password when the operator gives no reader URL: derived from the owner's password, so
 * every replica (and every restart) agrees on it without storing another secret. Whoever holds the owner
 * password can already do more than the reader can.
 */
export function deriveReaderUrl(ownerUrl: string, role = READER_ROLE): string {
  const url = new URL(ownerUrl);
  const ownerPassword = decodeURIComponent(url.password);
  const password = createHmac("sha256", ownerPassword).update(`flip-data-access:${role}`).digest("base64url");
  url.username = role;
  url.password = password;
  return url.toString();
}

/** Lets the reader role log in with the password in `readerUrl` (see deriveReaderUrl). */
export async function enableReaderLogin(db: pg.ClientBase, readerUrl: string): Promise<void> {
  const url = new URL(readerUrl);
  const role = checkedRole(decodeURIComponent(url.username));
  const password = pg.escapeLiteral(decodeURIComponent(url.password));
  await retryCatalogRace(() => db.query(`alter role ${role} with login password ${password}`));
}

function checkedRole(role: string): string {
  if (!ROLE_NAME.test(role)) throw new Error(`reader role name must be a lower-case SQL identifier, got ${JSON.stringify(role)}`);
  return pg.escapeIdentifier(role);
}

/** duplicate_object, unique_violation, and "tuple concurrently updated" (XX000) from racing catalog writes. */
const RACE_CODES = new Set(["42710", "23505", "XX000", "40001", "40P01"]);

async function retryCatalogRace<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (attempt >= 5 || typeof code !== "string" || !RACE_CODES.has(code)) throw e;
      await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 30));
    }
  }
}

/** The reader role can do more than read `omop`; the service refuses to start with it. */
export class ReaderRoleTooPowerfulError extends Error {
  override readonly name = "ReaderRoleTooPowerfulError";
  constructor(
    readonly role: string,
    readonly problems: string[],
  ) {
    super(`the cohort reader role ${role} must only read schema omop, but it ${problems.join("; ")}`);
  }
}

/**
 * Checks, connected as the reader, that the role cannot write to `omop`, create objects there, read the
 * trust's frozen cohorts, or bypass permissions. Guards against an operator handing in an owner URL.
 */
export async function assertReaderIsReadOnly(reader: pg.ClientBase | pg.Pool, localSchema: string): Promise<void> {
  const { rows } = await reader.query<{ role: string; superuser: boolean; bypassrls: boolean; writable: string[]; create_in_omop: boolean; reads_local: boolean }>({
    // The reader pool keeps values as text; this query wants booleans and arrays parsed.
    types: { getTypeParser: pg.types.getTypeParser },
    text: `select current_user as role,
            r.rolsuper as superuser,
            r.rolbypassrls as bypassrls,
            coalesce((select array_agg(c.relname::text order by c.relname)
                        from pg_class c join pg_namespace n on n.oid = c.relnamespace
                       where n.nspname = $1 and c.relkind in ('r', 'p')
                         and (has_table_privilege(c.oid, 'INSERT') or has_table_privilege(c.oid, 'UPDATE')
                              or has_table_privilege(c.oid, 'DELETE') or has_table_privilege(c.oid, 'TRUNCATE'))), '{}') as writable,
            coalesce(has_schema_privilege(to_regnamespace($1)::oid, 'CREATE'), false) as create_in_omop,
            coalesce(has_schema_privilege(to_regnamespace($2)::oid, 'USAGE'), false) as reads_local
       from pg_roles r where r.rolname = current_user`,
    values: [OMOP_SCHEMA, localSchema],
  });
  const r = rows[0]!;
  const problems: string[] = [];
  if (r.superuser) problems.push("is a superuser");
  if (r.bypassrls) problems.push("bypasses row-level security");
  if (r.writable.length > 0) problems.push(`can write to ${r.writable.map((t) => `${OMOP_SCHEMA}.${t}`).join(", ")}`);
  if (r.create_in_omop) problems.push(`can create objects in schema ${OMOP_SCHEMA}`);
  if (r.reads_local) problems.push(`can use schema ${localSchema}`);
  if (problems.length > 0) throw new ReaderRoleTooPowerfulError(r.role, problems);
}

/** Grants the reader role read access to omop and lets it log in with its derived password; returns its URL. */
export async function provisionReader(owner: pg.Pool, ownerUrl: string): Promise<string> {
  const readerUrl = deriveReaderUrl(ownerUrl);
  const client = await owner.connect();
  try {
    await grantCohortReader(client);
    await enableReaderLogin(client, readerUrl);
  } finally {
    client.release();
  }
  return readerUrl;
}
