/**
 * The imaging service's own index, in schema `flip_imaging` of its database: per project, each
 * accession number's import (state, attempts, reason), the pseudonymised study it became, and the
 * images (de-identified DICOM instances in the research store, NIfTI volumes on disk) it holds.
 * Accession numbers live only here, inside the trust: the research store holds de-identified copies.
 */
import type pg from "pg";

export const IMAGING_SCHEMA = "flip_imaging";

export const STUDY_STATES = ["queued", "importing", "imported", "failed", "not_found", "ambiguous"] as const;
export type StudyState = (typeof STUDY_STATES)[number];

const DDL = [
  `create schema if not exists ${IMAGING_SCHEMA}`,
  `create table if not exists ${IMAGING_SCHEMA}.project (
     project_id text primary key,
     convert_to_nifti boolean not null default false,
     requested_at timestamptz not null default now(),
     updated_at timestamptz not null default now()
   )`,
  `create table if not exists ${IMAGING_SCHEMA}.study (
     project_id text not null references ${IMAGING_SCHEMA}.project (project_id) on delete cascade,
     accession text not null,
     state text not null check (state in (${STUDY_STATES.map((s) => `'${s}'`).join(", ")})),
     attempts integer not null default 0,
     next_attempt_at timestamptz not null default now(),
     reason text,
     study_key text,
     store_study_id text,
     modality text,
     instances integer not null default 0,
     bytes bigint not null default 0,
     nifti_done boolean not null default false,
     updated_at timestamptz not null default now(),
     primary key (project_id, accession)
   )`,
  `create index if not exists study_due on ${IMAGING_SCHEMA}.study (next_attempt_at) where state = 'queued'`,
  `create table if not exists ${IMAGING_SCHEMA}.image (
     project_id text not null,
     image_id text not null,
     accession text not null,
     format text not null check (format in ('dicom', 'nifti')),
     study_key text not null,
     series_key text not null,
     modality text not null,
     -- The research store's instance id (dicom) or the file's path under the data directory (nifti).
     location text not null,
     size_bytes bigint not null,
     instance_number integer,
     primary key (project_id, image_id),
     foreign key (project_id, accession) references ${IMAGING_SCHEMA}.study (project_id, accession) on delete cascade
   )`,
  `create index if not exists image_by_study on ${IMAGING_SCHEMA}.image (project_id, accession)`,
];

/** Creates `flip_imaging` and its tables when missing; safe to run at every start. */
export async function ensureImagingSchema(db: pg.Pool): Promise<void> {
  const c = await db.connect();
  try {
    // Serialises concurrent starts: CREATE … IF NOT EXISTS is not race-free.
    await c.query("select pg_advisory_lock(hashtext('flip.imaging.schema'))");
    try {
      for (const sql of DDL) await c.query(sql);
    } finally {
      await c.query("select pg_advisory_unlock(hashtext('flip.imaging.schema'))");
    }
  } finally {
    c.release();
  }
}
