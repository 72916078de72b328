import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { TaskErrorCode, TaskErrorSchema, type TaskError } from "@flip/gen/flip/link/v1/link_pb.js";
import { TaskOutputSchema, TaskSpecSchema, type TaskOutput, type TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";

/** Task payloads are stored as canonical proto JSON: readable in psql, and tolerant of added fields. */
export const specToJson = (s: TaskSpec): JsonValue => toJson(TaskSpecSchema, s);
export const outputToJson = (o: TaskOutput): JsonValue => toJson(TaskOutputSchema, o);
export const errorToJson = (e: TaskError): JsonValue => toJson(TaskErrorSchema, e);

const lenient = { ignoreUnknownFields: true };
export const specFromJson = (j: JsonValue): TaskSpec => fromJson(TaskSpecSchema, j, lenient);
export const outputFromJson = (j: JsonValue | null | undefined): TaskOutput | undefined => (j == null ? undefined : fromJson(TaskOutputSchema, j, lenient));
export const errorFromJson = (j: JsonValue | null | undefined): TaskError | undefined => (j == null ? undefined : fromJson(TaskErrorSchema, j, lenient));

/** An error the hub itself decides (deadline, cancellation, attempts), in the same shape trusts report. */
export function hubTaskError(code: TaskErrorCode, message: string): JsonValue {
  return errorToJson(create(TaskErrorSchema, { code, message, retryable: false }));
}

export { TaskErrorCode };
