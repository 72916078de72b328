import { createHash } from "node:crypto";
import type pg from "pg";
import { IMAGING_SCHEMA } from "./schema.js";

const S = IMAGING_SCHEMA;

export type ImageFormat = "dicom" | "nifti";

/** One image of a project: a de-identified DICOM instance in the research store, or a NIfTI volume. */
export interface ImageRow {
  imageId: string;
  accession: string;
  format: ImageFormat;
  studyKey: string;
  seriesKey: string;
  modality: string;
  /** The research store's instance id (dicom) or the path under the data directory (nifti). */
  location: string;
  sizeBytes: number;
  instanceNumber: number | null;
}

/**
 * An image's id: opaque and stable within the project (a hash of the pseudonymised UID it stands for),
 * so a re-import gives the same id and nothing identifying shows through.
 */
export function imageIdOf(format: ImageFormat, projectId: string, pseudonymousUid: string): string {
  return `${format === "dicom" ? "d" : "n"}-${createHash("sha256").update(`${projectId}\0${pseudonymousUid}`).digest("hex").slice(0, 32)}`;
}

/** Records images (idempotent: a re-import replaces the rows it had). */
export async function upsertImages(db: pg.Pool, projectId: string, images: ImageRow[]): Promise<void> {
  if (images.length === 0) return;
  const col = <K extends keyof ImageRow>(k: K) => images.map((i) => i[k]);
  await db.query(
    `insert into ${S}.image (project_id, image_id, accession, format, study_key, series_key, modality, location, size_bytes, instance_number)
     select $1, * from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::int[])
     on conflict (project_id, image_id) do update
       set location = excluded.location, size_bytes = excluded.size_bytes, accession = excluded.accession, instance_number = excluded.instance_number`,
    [projectId, col("imageId"), col("accession"), col("format"), col("studyKey"), col("seriesKey"), col("modality"), col("location"), col("sizeBytes"), col("instanceNumber")],
  );
}

function toRow(r: Record<string, unknown>): ImageRow {
  return {
    imageId: r.image_id as string,
    accession: r.accession as string,
    format: r.format as ImageFormat,
    studyKey: r.study_key as string,
    seriesKey: r.series_key as string,
    modality: r.modality as string,
    location: r.location as string,
    sizeBytes: Number(r.size_bytes),
    instanceNumber: (r.instance_number as number | null) ?? null,
  };
}

/** A project's images of the given accession numbers (its frozen cohort), by study, series and instance. */
export async function imagesOfAccessions(db: pg.Pool, projectId: string, accessions: string[]): Promise<ImageRow[]> {
  const { rows } = await db.query(
    `select i.* from ${S}.image i
       join ${S}.study s on s.project_id = i.project_id and s.accession = i.accession and s.state = 'imported'
      where i.project_id = $1 and i.accession = any($2::text[])
      order by i.study_key, i.series_key, i.format, i.instance_number nulls last, i.image_id`,
    [projectId, accessions],
  );
  return rows.map(toRow);
}

/** One image of a project, or undefined. */
export async function findImage(db: pg.Pool, projectId: string, imageId: string): Promise<ImageRow | undefined> {
  const { rows } = await db.query(`select * from ${S}.image where project_id = $1 and image_id = $2`, [projectId, imageId]);
  return rows[0] ? toRow(rows[0]) : undefined;
}

/** The DICOM images of one study (for NIfTI conversion), by series and instance number. */
export async function dicomImagesOfStudy(db: pg.Pool, projectId: string, accession: string): Promise<ImageRow[]> {
  const { rows } = await db.query(
    `select * from ${S}.image where project_id = $1 and accession = $2 and format = 'dicom' order by series_key, instance_number nulls last, image_id`,
    [projectId, accession],
  );
  return rows.map(toRow);
}
