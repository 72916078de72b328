import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ImagingState, TrustImagingStatusSchema, type TrustImagingStatus } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { countsFromJson, type ImagingStateName } from "./rows.js";
import type { TrustImaging } from "./status.js";

const STATE: Record<ImagingStateName, ImagingState> = {
  importing: ImagingState.IMPORTING,
  done: ImagingState.DONE,
  failed: ImagingState.FAILED,
  deleting: ImagingState.DELETING,
  deleted: ImagingState.DELETED,
};

/** A trust's imaging as the API shows it: counts and reasons only, never an identifier from the trust. */
export function trustImagingToProto(t: TrustImaging): TrustImagingStatus {
  const row = t.row;
  if (!row) return create(TrustImagingStatusSchema, { trustId: t.trustId, trustCode: t.trustCode, state: ImagingState.NOT_REQUESTED });
  let error = row.error ?? "";
  if (!error && row.state === "deleting" && t.linkedGatewayDeletes === false) {
    error = `trust "${t.trustCode}" runs no imaging service now: the deletion waits until its gateway takes it`;
  }
  return create(TrustImagingStatusSchema, {
    trustId: t.trustId,
    trustCode: t.trustCode,
    state: STATE[row.state],
    counts: countsFromJson(row.counts),
    convertToNifti: row.convert_to_nifti,
    error,
    updatedAt: timestampFromDate(new Date(row.updated_at)),
    taskId: row.import_task_id ?? "",
  });
}
