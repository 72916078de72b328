/**
 * The import queue: one row per (project, accession number). Rows are claimed with SKIP LOCKED, so
 * replicas and concurrent workers never import one study twice at once, and every state change is one
 * statement, so a crash leaves a row either before or after it (an interrupted import is re-queued at start).
 */
import type pg from "pg";
import { IMAGING_SCHEMA, type StudyState } from "./schema.js";

const S = IMAGING_SCHEMA;

export interface StudyKey {
  projectId: string;
  accession: string;
}

/** A study claimed for import. */
export interface ClaimedStudy extends StudyKey {
  /** This attempt's number (1 for the first). */
  attempt: number;
  convertToNifti: boolean;
  /** Set when an earlier attempt stored the study: only the NIfTI conversion may be left to do. */
  storeStudyId: string | null;
  niftiDone: boolean;
}

export interface EnqueueResult {
  requested: number;
  queued: number;
}

/**
 * Queues a project's accession numbers. Studies already imported stay as they are (unless a NIfTI
 * conversion is newly asked for); queued or importing ones are left alone; failed, not-found and
 * ambiguous ones are queued again with fresh attempts (the PACS may have changed). Asking for NIfTI once
 * keeps it asked for.
 */
export async function enqueueStudies(db: pg.Pool, projectId: string, accessions: string[], convertToNifti: boolean): Promise<EnqueueResult> {
  const c = await db.connect();
  try {
    await c.query("begin");
    const { rows: project } = await c.query<{ convert_to_nifti: boolean }>(
      `insert into ${S}.project (project_id, convert_to_nifti) values ($1, $2)
       on conflict (project_id) do update set convert_to_nifti = ${S}.project.convert_to_nifti or excluded.convert_to_nifti, updated_at = now()
       returning convert_to_nifti`,
      [projectId, convertToNifti],
    );
    const nifti = project[0]!.convert_to_nifti;
    const { rows } = await c.query<{ queued: string }>(
      `with wanted as (select unnest($2::text[]) as accession),
       inserted as (
         insert into ${S}.study (project_id, accession, state)
         select $1, accession, 'queued' from wanted
         on conflict (project_id, accession) do update
           set state = 'queued', attempts = 0, next_attempt_at = now(), reason = null, updated_at = now()
           where ${S}.study.state in ('failed', 'not_found', 'ambiguous')
              or (${S}.study.state = 'imported' and $3 and not ${S}.study.nifti_done)
         returning 1
       )
       select count(*) as queued from inserted`,
      [projectId, accessions, nifti],
    );
    await c.query("commit");
    return { requested: accessions.length, queued: Number(rows[0]?.queued ?? 0) };
  } catch (e) {
    await c.query("rollback").catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** Claims up to `limit` due studies (oldest due first) and marks them importing. */
export async function claimDueStudies(db: pg.Pool, limit: number): Promise<ClaimedStudy[]> {
  if (limit <= 0) return [];
  const { rows } = await db.query<{ project_id: string; accession: string; attempts: number; convert_to_nifti: boolean; store_study_id: string | null; nifti_done: boolean }>(
    `with due as (
       select project_id, accession from ${S}.study
        where state = 'queued' and next_attempt_at <= now()
        order by next_attempt_at, project_id, accession
        limit $1
        for update skip locked
     )
     update ${S}.study s set state = 'importing', attempts = s.attempts + 1, updated_at = now()
       from due, ${S}.project p
      where s.project_id = due.project_id and s.accession = due.accession and p.project_id = s.project_id
      returning s.project_id, s.accession, s.attempts, p.convert_to_nifti, s.store_study_id, s.nifti_done`,
    [limit],
  );
  return rows.map((r) => ({
    projectId: r.project_id,
    accession: r.accession,
    attempt: r.attempts,
    convertToNifti: r.convert_to_nifti,
    storeStudyId: r.store_study_id,
    niftiDone: r.nifti_done,
  }));
}

/** When the next queued study falls due, or undefined when none is queued. */
export async function nextDueAt(db: pg.Pool): Promise<Date | undefined> {
  const { rows } = await db.query<{ at: Date | null }>(`select min(next_attempt_at) as at from ${S}.study where state = 'queued'`);
  return rows[0]?.at ?? undefined;
}

/** Studies left importing by a process that stopped are queued again, without counting that attempt. */
export async function requeueInterrupted(db: pg.Pool): Promise<number> {
  const { rowCount } = await db.query(
    `update ${S}.study set state = 'queued', attempts = greatest(attempts - 1, 0), next_attempt_at = now(), updated_at = now() where state = 'importing'`,
  );
  return rowCount ?? 0;
}

export interface ImportedStudy {
  studyKey: string;
  storeStudyId: string;
  modality: string;
  instances: number;
  bytes: number;
  niftiDone: boolean;
}

/** Records a stored study. Only a row still importing changes (a deleted project's row is gone). */
export async function markImported(db: pg.Pool, key: StudyKey, study: ImportedStudy): Promise<boolean> {
  const { rowCount } = await db.query(
    `update ${S}.study set state = 'imported', reason = null, study_key = $3, store_study_id = $4, modality = $5, instances = $6, bytes = $7,
            nifti_done = $8, updated_at = now()
      where project_id = $1 and accession = $2 and state = 'importing'`,
    [key.projectId, key.accession, study.studyKey, study.storeStudyId, study.modality, study.instances, study.bytes, study.niftiDone],
  );
  return (rowCount ?? 0) > 0;
}

/** Records that an imported study's NIfTI volumes were made (by a later attempt that only converted). */
export async function markNiftiDone(db: pg.Pool, key: StudyKey): Promise<void> {
  await db.query(`update ${S}.study set state = 'imported', reason = null, nifti_done = true, updated_at = now() where project_id = $1 and accession = $2 and state = 'importing'`, [
    key.projectId,
    key.accession,
  ]);
}

/** Whether the study is still queued for the project (its row goes when the project's copies are deleted). */
export async function studyExists(db: pg.Pool, key: StudyKey): Promise<boolean> {
  const { rowCount } = await db.query(`select 1 from ${S}.study where project_id = $1 and accession = $2`, [key.projectId, key.accession]);
  return (rowCount ?? 0) > 0;
}

/** Records an outcome that another try would not change (not found, ambiguous). */
export async function markUnimportable(db: pg.Pool, key: StudyKey, state: Extract<StudyState, "not_found" | "ambiguous">, reason: string): Promise<void> {
  await db.query(`update ${S}.study set state = $3, reason = $4, updated_at = now() where project_id = $1 and accession = $2 and state = 'importing'`, [
    key.projectId,
    key.accession,
    state,
    reason,
  ]);
}

/** The longest wait between two tries. */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * Records a failed attempt: queued again after an exponential back-off while tries are left and the
 * failure is worth retrying; failed otherwise. Returns the state the study is in now.
 */
export async function markAttemptFailed(
  db: pg.Pool,
  key: StudyKey,
  failure: { reason: string; retryable: boolean; attempt: number },
  pacing: { maxAttempts: number; retryBaseMs: number },
): Promise<StudyState> {
  const retry = failure.retryable && failure.attempt < pacing.maxAttempts;
  const delayMs = Math.min(MAX_RETRY_DELAY_MS, pacing.retryBaseMs * 2 ** (failure.attempt - 1));
  const state: StudyState = retry ? "queued" : "failed";
  const reason = !retry && failure.retryable ? `${failure.reason} (gave up after ${failure.attempt} attempts)` : failure.reason;
  await db.query(
    `update ${S}.study set state = $3, reason = $4, next_attempt_at = now() + ($5 || ' milliseconds')::interval, updated_at = now()
      where project_id = $1 and accession = $2 and state = 'importing'`,
    [key.projectId, key.accession, state, reason, String(retry ? delayMs : 0)],
  );
  return state;
}

export interface AccessionRow {
  accession: string;
  state: StudyState;
  reason: string | null;
  attempts: number;
  studyKey: string | null;
  instances: number;
  updatedAt: Date;
}

/** Each accession of a project's import (trust-internal), in accession order. */
export async function projectAccessions(db: pg.Pool, projectId: string): Promise<AccessionRow[]> {
  const { rows } = await db.query<{ accession: string; state: StudyState; reason: string | null; attempts: number; study_key: string | null; instances: number; updated_at: Date }>(
    `select accession, state, reason, attempts, study_key, instances, updated_at from ${S}.study where project_id = $1 order by accession`,
    [projectId],
  );
  return rows.map((r) => ({ accession: r.accession, state: r.state, reason: r.reason, attempts: r.attempts, studyKey: r.study_key, instances: r.instances, updatedAt: r.updated_at }));
}

export interface ProjectImport {
  convertToNifti: boolean;
  updatedAt: Date;
}

export async function findProjectImport(db: pg.Pool, projectId: string): Promise<ProjectImport | undefined> {
  const { rows } = await db.query<{ convert_to_nifti: boolean; updated_at: Date }>(
    `select p.convert_to_nifti, greatest(p.updated_at, coalesce((select max(updated_at) from ${S}.study s where s.project_id = p.project_id), p.updated_at)) as updated_at
       from ${S}.project p where p.project_id = $1`,
    [projectId],
  );
  const r = rows[0];
  return r ? { convertToNifti: r.convert_to_nifti, updatedAt: r.updated_at } : undefined;
}
