import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { HealthSnapshotSchema, type HealthSnapshot } from "@flip/gen/flip/common/v1/common_pb.js";

/** A trust's last health snapshot, stored as its canonical proto JSON. */
export type HealthSnapshotJson = JsonValue;

export function healthToJson(h: HealthSnapshot): HealthSnapshotJson {
  return toJson(HealthSnapshotSchema, h);
}

export function healthFromJson(j: HealthSnapshotJson | null | undefined): HealthSnapshot | undefined {
  if (j === null || j === undefined) return undefined;
  try {
    return fromJson(HealthSnapshotSchema, j, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}
