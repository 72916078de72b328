import { create } from "@bufbuild/protobuf";
import { ImagingImportOutputSchema, type ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";
import type pg from "pg";
import { IMAGING_SCHEMA, type StudyState } from "./schema.js";

const S = IMAGING_SCHEMA;

/** Counts a project's import; reasons are grouped (their texts never hold an identifier). */
export async function importCounts(db: pg.Pool, projectId: string): Promise<ImagingImportOutput> {
  const { rows: states } = await db.query<{ state: StudyState; n: string }>(`select state, count(*) as n from ${S}.study where project_id = $1 group by state`, [projectId]);
  const { rows: reasons } = await db.query<{ state: StudyState; reason: string; n: string }>(
    `select state, reason, count(*) as n from ${S}.study
      where project_id = $1 and reason is not null and state in ('queued', 'failed', 'not_found', 'ambiguous')
      group by state, reason order by count(*) desc, reason limit 20`,
    [projectId],
  );
  const { rows: images } = await db.query<{ dicom: string; nifti: string }>(
    `select count(*) filter (where format = 'dicom') as dicom, count(*) filter (where format = 'nifti') as nifti from ${S}.image where project_id = $1`,
    [projectId],
  );
  const n = (state: StudyState) => BigInt(states.find((r) => r.state === state)?.n ?? 0);
  return create(ImagingImportOutputSchema, {
    studiesRequested: states.reduce((sum, r) => sum + BigInt(r.n), 0n),
    studiesQueued: n("queued"),
    studiesImporting: n("importing"),
    studiesImported: n("imported"),
    studiesFailed: n("failed"),
    studiesNotFound: n("not_found"),
    studiesAmbiguous: n("ambiguous"),
    imagesStored: BigInt(images[0]?.dicom ?? 0),
    niftiSeries: BigInt(images[0]?.nifti ?? 0),
    reasons: reasons.map((r) => ({ reason: r.state === "queued" ? `retrying: ${r.reason}` : r.reason, count: BigInt(r.n) })),
  });
}

/** Whether every study of the import has an outcome (nothing queued or importing). */
export function importSettled(counts: ImagingImportOutput): boolean {
  return counts.studiesQueued === 0n && counts.studiesImporting === 0n;
}
