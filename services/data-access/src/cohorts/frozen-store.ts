/**
 * Frozen cohorts live in schema `flip_local`, in the OMOP database but out of the reader role's reach:
 * membership (person ids, and the accession numbers of their studies at freeze time) per project.
 * Members are served only while still present in `omop.person`, so a cohort can shrink but never grow.
 */
import type pg from "pg";
import { LOCAL_SCHEMA, ownerWork } from "./local-store.js";
import { GUARD_DDL } from "./query-guard.js";


export interface FrozenCohort {
  projectId: string;
  queryId: string;
  querySha256: string;
  normalizedSql: string;
  /** The threshold applied when it was frozen; later serves use at least this. */
  threshold: number;
  personCount: number;
  studyCount: number;
  frozenAt: Date;
}

const DDL = [
  `create schema if not exists ${LOCAL_SCHEMA}`,
  `revoke all on schema ${LOCAL_SCHEMA} from public`,
  `create table if not exists ${LOCAL_SCHEMA}.frozen_cohort (
     project_id text primary key,
     query_id text not null,
     query_sha256 text not null,
     normalized_sql text not null,
     threshold integer not null,
     person_count integer not null,
     study_count integer not null,
     frozen_at timestamptz not null default now()
   )`,
  `create table if not exists ${LOCAL_SCHEMA}.frozen_cohort_person (
     project_id text not null references ${LOCAL_SCHEMA}.frozen_cohort (project_id) on delete cascade,
     person_id bigint not null,
     primary key (project_id, person_id)
   )`,
  `create table if not exists ${LOCAL_SCHEMA}.frozen_cohort_study (
     project_id text not null references ${LOCAL_SCHEMA}.frozen_cohort (project_id) on delete cascade,
     accession_id text not null,
     person_id bigint not null,
     primary key (project_id, accession_id)
   )`,
];

/** Creates `flip_local` and its tables when missing; safe to run at every start. */
export async function ensureLocalSchema(owner: pg.Pool): Promise<void> {
  await ownerWork(owner, async (c) => {
    // Serialises concurrent starts: CREATE … IF NOT EXISTS is not race-free.
    await c.query("select pg_advisory_lock(hashtext('flip.data-access.local-schema'))");
    try {
      for (const sql of [...DDL, ...GUARD_DDL]) await c.query(sql);
    } finally {
      await c.query("select pg_advisory_unlock(hashtext('flip.data-access.local-schema'))");
    }
  });
}

interface FrozenRow {
  project_id: string;
  query_id: string;
  query_sha256: string;
  normalized_sql: string;
  threshold: number;
  person_count: number;
  study_count: number;
  frozen_at: Date;
}

const toFrozen = (r: FrozenRow): FrozenCohort => ({
  projectId: r.project_id,
  queryId: r.query_id,
  querySha256: r.query_sha256,
  normalizedSql: r.normalized_sql,
  threshold: r.threshold,
  personCount: r.person_count,
  studyCount: r.study_count,
  frozenAt: r.frozen_at,
});

export async function findFrozen(db: pg.ClientBase, projectId: string): Promise<FrozenCohort | undefined> {
  const { rows } = await db.query<FrozenRow>(`select * from ${LOCAL_SCHEMA}.frozen_cohort where project_id = $1`, [projectId]);
  return rows[0] ? toFrozen(rows[0]) : undefined;
}

/**
 * Stores a cohort unless the project already has one; returns whichever is stored. The transaction and the
 * per-project advisory lock make two concurrent freezes of one project store exactly one.
 */
export async function storeFrozen(
  db: pg.ClientBase,
  cohort: Omit<FrozenCohort, "personCount" | "studyCount" | "frozenAt">,
  personIds: readonly string[],
): Promise<{ cohort: FrozenCohort; created: boolean }> {
  await db.query("begin");
  try {
    await db.query("select pg_advisory_xact_lock(hashtext('flip.freeze:' || $1))", [cohort.projectId]);
    const existing = await findFrozen(db, cohort.projectId);
    if (existing) {
      await db.query("commit");
      return { cohort: existing, created: false };
    }
    await db.query(
      `insert into ${LOCAL_SCHEMA}.frozen_cohort (project_id, query_id, query_sha256, normalized_sql, threshold, person_count, study_count)
       values ($1, $2, $3, $4, $5, 0, 0)`,
      [cohort.projectId, cohort.queryId, cohort.querySha256, cohort.normalizedSql, cohort.threshold],
    );
    await db.query(`insert into ${LOCAL_SCHEMA}.frozen_cohort_person (project_id, person_id) select $1, unnest($2::bigint[])`, [cohort.projectId, personIds]);
    await db.query(
      `insert into ${LOCAL_SCHEMA}.frozen_cohort_study (project_id, accession_id, person_id)
       select distinct on (io.accession_id) $1, io.accession_id, io.person_id
         from omop.image_occurrence io
         join ${LOCAL_SCHEMA}.frozen_cohort_person m on m.project_id = $1 and m.person_id = io.person_id
        where io.accession_id is not null
        order by io.accession_id, io.person_id`,
      [cohort.projectId],
    );
    const { rows } = await db.query<FrozenRow>(
      `update ${LOCAL_SCHEMA}.frozen_cohort f
          set person_count = (select count(*) from ${LOCAL_SCHEMA}.frozen_cohort_person where project_id = $1),
              study_count = (select count(*) from ${LOCAL_SCHEMA}.frozen_cohort_study where project_id = $1)
        where f.project_id = $1
        returning *`,
      [cohort.projectId],
    );
    await db.query("commit");
    return { cohort: toFrozen(rows[0]!), created: true };
  } catch (e) {
    await db.query("rollback").catch(() => undefined);
    throw e;
  }
}

/** Frozen members still present in omop.person, as decimal strings, ascending. */
export async function presentMembers(db: pg.ClientBase, projectId: string): Promise<string[]> {
  const { rows } = await db.query<{ person_id: string }>(
    `select m.person_id::text as person_id
       from ${LOCAL_SCHEMA}.frozen_cohort_person m
       join omop.person p on p.person_id = m.person_id
      where m.project_id = $1
      order by m.person_id`,
    [projectId],
  );
  return rows.map((r) => r.person_id);
}

/** Accession numbers frozen for members still present, whose study is still in omop.image_occurrence. */
export async function presentAccessions(db: pg.ClientBase, projectId: string): Promise<string[]> {
  const { rows } = await db.query<{ accession_id: string }>(
    `select s.accession_id
       from ${LOCAL_SCHEMA}.frozen_cohort_study s
       join omop.person p on p.person_id = s.person_id
      where s.project_id = $1
        and exists (select 1 from omop.image_occurrence io where io.accession_id = s.accession_id and io.person_id = s.person_id)
      order by s.accession_id`,
    [projectId],
  );
  return rows.map((r) => r.accession_id);
}
