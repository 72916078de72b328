import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TaskSchema as TaskMessageSchema, TaskState, type Task as TaskMessage } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName } from "@flip/shared/link/task-kinds.js";
import type { TaskStateName } from "./entities.js";
import type { TaskView } from "./queries.js";
import { errorFromJson, outputFromJson, specFromJson } from "./task-json.js";

const STATE_TO_PROTO: Record<TaskStateName, TaskState> = {
  pending: TaskState.PENDING,
  offered: TaskState.OFFERED,
  running: TaskState.RUNNING,
  succeeded: TaskState.SUCCEEDED,
  failed: TaskState.FAILED,
  cancelled: TaskState.CANCELLED,
  expired: TaskState.EXPIRED,
};

export function taskStateToProto(s: TaskStateName): TaskState {
  return STATE_TO_PROTO[s];
}

export function taskStateFromProto(s: TaskState): TaskStateName | undefined {
  return (Object.keys(STATE_TO_PROTO) as TaskStateName[]).find((k) => STATE_TO_PROTO[k] === s);
}

export function taskToProto({ task: t, trustCode }: TaskView): TaskMessage {
  return create(TaskMessageSchema, {
    id: t.id,
    trustId: t.trustId,
    trustCode,
    kind: taskKindFromName(t.kind) ?? TaskKind.UNSPECIFIED,
    state: taskStateToProto(t.state),
    attempt: t.attempt,
    maxAttempts: t.maxAttempts,
    spec: specFromJson(t.spec),
    output: outputFromJson(t.output),
    error: errorFromJson(t.error),
    endReason: t.endReason ?? "",
    progress: Number(t.progress),
    progressMessage: t.progressMessage,
    createdAt: timestampFromDate(t.createdAt),
    deadline: timestampFromDate(t.deadline),
    endedAt: t.endedAt ? timestampFromDate(t.endedAt) : undefined,
    projectId: t.projectId ?? "",
  });
}
