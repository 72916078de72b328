import { clone, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ImagingImportOutputSchema, type ImagingImportOutput } from "@flip/gen/flip/link/v1/tasks_pb.js";

export const IMAGING_STATES = ["importing", "done", "failed", "deleting", "deleted"] as const;
export type ImagingStateName = (typeof IMAGING_STATES)[number];

/** Reasons kept per report, and characters per reason: a trust cannot grow a row without bound. */
const MAX_REASONS = 50;
const MAX_REASON_CHARS = 300;

/** A trust's imaging for a project (`project_imaging`), as raw SQL returns it. */
export interface ImagingRow {
  project_id: string;
  trust_id: string;
  state: ImagingStateName;
  /** The import the row follows: progress and the end of any other import task are ignored. */
  import_task_id: string | null;
  delete_task_id: string | null;
  convert_to_nifti: boolean;
  /** The latest ImagingImportOutput the trust reported, as proto JSON. */
  counts: JsonValue | null;
  /** When the counts last changed (a report that repeats them does not move it). */
  counts_changed_at: Date | null;
  error: string | null;
  /** Why the research copies are deleted ("project deleted", "approval withdrawn"); set once deleting. */
  delete_reason: string | null;
  updated_at: Date;
}

/** Counts as stored: reasons bounded, everything else as the trust sent it. */
export function countsToJson(counts: ImagingImportOutput): JsonValue {
  const bounded = clone(ImagingImportOutputSchema, counts);
  bounded.reasons = bounded.reasons.slice(0, MAX_REASONS);
  for (const r of bounded.reasons) r.reason = r.reason.slice(0, MAX_REASON_CHARS);
  return toJson(ImagingImportOutputSchema, bounded);
}

export function countsFromJson(j: JsonValue | null | undefined): ImagingImportOutput | undefined {
  return j == null ? undefined : fromJson(ImagingImportOutputSchema, j, { ignoreUnknownFields: true });
}

/** The project's rows for these trusts, locked for the rest of the transaction. */
export async function lockImagingRows(tx: EntityManager, projectId: string, trustIds: string[]): Promise<ImagingRow[]> {
  if (trustIds.length === 0) return [];
  return await tx.execute<ImagingRow[]>("select * from project_imaging where project_id = ? and trust_id = any(?::uuid[]) order by trust_id for update", [projectId, uuidList(trustIds)]);
}

/** A Postgres array literal of UUIDs (execute() would spread a JavaScript array into a list). */
export function uuidList(ids: string[]): string {
  return `{${ids.join(",")}}`;
}
