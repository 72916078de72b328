import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ActivityOutcome, TrustActivitySchema, type TrustActivity } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { DecisionMaker, DecisionState, TrustDecisionSchema, type TrustDecision } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TaskErrorCode, type TaskError } from "@flip/gen/flip/link/v1/link_pb.js";
import { CohortOutcome, TaskKind, TrainingAction, type TaskOutput, type TaskSpec } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { taskKindFromName } from "@flip/shared/link/task-kinds.js";
import { redactTaskError } from "../cohorts/answers.js";
import { isUuid } from "../domain/ids.js";
import type { People } from "../identity/people.js";
import { errorFromJson, outputFromJson, specFromJson } from "../tasks/task-json.js";
import type { ActivityRow, TrustActivityPage } from "./activity.js";
import type { Trust } from "./entities.js";

/** Kinds whose INVALID error is a validator rule about the researcher's SQL, which may be shown as it is. */
const SQL_KINDS = new Set(["cohort_query", "freeze_cohort"]);
/** Kinds only a trust's imaging service carries out: a gateway without one declines them. */
const IMAGING_KINDS = new Set(["imaging_import", "imaging_delete"]);

const DECISION_OF_ACTION: Record<string, DecisionState> = {
  "project.trust_approved": DecisionState.APPROVED,
  "project.trust_declined": DecisionState.DECLINED,
  "project.approval_withdrawn": DecisionState.WITHDRAWN,
};

export function trustActivityToProto({ trust, rows, people }: TrustActivityPage): TrustActivity[] {
  return rows.map((r) => activityOf(r, trust, people));
}

function activityOf(r: ActivityRow, trust: Trust, people: People): TrustActivity {
  const spec = specFromJson(r.spec);
  const output = outputFromJson(r.output);
  const { outcome, detail } = outcomeOf(r, output, errorFromJson(r.error));
  // Training tasks are created by the hub's scheduler: the person who asked is the one who started the job.
  const requestedBy = r.kind === "training" && r.job_created_by ? actorOfId(r.job_created_by) : r.created_by;
  return create(TrustActivitySchema, {
    taskId: r.id,
    kind: taskKindFromName(r.kind) ?? TaskKind.UNSPECIFIED,
    requestedAt: timestampFromDate(new Date(r.created_at)),
    endedAt: r.ended_at ? timestampFromDate(new Date(r.ended_at)) : undefined,
    outcome,
    outcomeDetail: detail,
    projectId: r.project_id ?? "",
    projectName: r.project_name ?? "",
    requestedBy,
    requester: people.of(requestedBy),
    decision: decisionOf(r, trust, people),
    details: detailsOf(r, spec, output),
  });
}

/** A user id as the hub names actors ("user:<id>"); other principals ("bootstrap-admin") as they are. */
function actorOfId(id: string): string {
  return isUuid(id) ? `user:${id}` : id;
}

function outcomeOf(r: ActivityRow, output: TaskOutput | undefined, error: TaskError | undefined): { outcome: ActivityOutcome; detail: string } {
  switch (r.state) {
    case "pending":
    case "offered":
    case "running":
      return { outcome: ActivityOutcome.IN_PROGRESS, detail: "" };
    case "succeeded": {
      const o = output?.kind;
      const suppressed = (o?.case === "cohortQuery" && o.value.outcome === CohortOutcome.SUPPRESSED) || (o?.case === "freezeCohort" && o.value.suppressed);
      return { outcome: suppressed ? ActivityOutcome.SUPPRESSED : ActivityOutcome.DONE, detail: "" };
    }
    case "cancelled":
      // The hub records "cancelled by <actor>: <reason>"; the reason is what the ledger's reader needs.
      return { outcome: ActivityOutcome.CANCELLED, detail: /^cancelled by \S+?: (.*)$/s.exec(r.end_reason ?? "")?.[1] ?? "" };
    case "expired":
      return { outcome: ActivityOutcome.FAILED, detail: redactTaskError(error, "expired") };
    case "failed": {
      if (error?.code === TaskErrorCode.DENIED) return { outcome: ActivityOutcome.REFUSED, detail: "denied_by_policy" };
      if (error?.code === TaskErrorCode.INVALID) {
        return { outcome: ActivityOutcome.REFUSED, detail: SQL_KINDS.has(r.kind) ? redactTaskError(error, "failed") : "invalid_request" };
      }
      if (error?.code === TaskErrorCode.UNSUPPORTED) {
        return { outcome: ActivityOutcome.FAILED, detail: IMAGING_KINDS.has(r.kind) ? "unsupported: this trust runs no imaging service" : "unsupported" };
      }
      return { outcome: ActivityOutcome.FAILED, detail: redactTaskError(error, "failed") };
    }
  }
}

function decisionOf(r: ActivityRow, trust: Trust, people: People): TrustDecision | undefined {
  const state = r.decision_action ? DECISION_OF_ACTION[r.decision_action] : undefined;
  if (state === undefined || !r.decision_at) return undefined;
  const after = parseAfter(r.decision_after);
  return create(TrustDecisionSchema, {
    trustId: trust.id,
    trustCode: trust.code,
    state,
    decidedAs: after.decidedAs === "site" ? DecisionMaker.SITE : after.decidedAs === "hub" ? DecisionMaker.HUB : DecisionMaker.UNSPECIFIED,
    decidedBy: r.decision_actor ?? "",
    decider: people.of(r.decision_actor),
    decidedAt: timestampFromDate(new Date(r.decision_at)),
    reason: after.reason ?? "",
  });
}

/** The fields of a decision's audit `after` the ledger shows; the hub wrote it, so only its shape is checked. */
function parseAfter(json: string | null): { decidedAs?: string; reason?: string } {
  const v: unknown = json ? JSON.parse(json) : undefined;
  if (typeof v !== "object" || v === null) return {};
  const { decidedAs, reason } = v as Record<string, unknown>;
  return { decidedAs: typeof decidedAs === "string" ? decidedAs : undefined, reason: typeof reason === "string" ? reason : undefined };
}

function detailsOf(r: ActivityRow, spec: TaskSpec, output: TaskOutput | undefined): MessageInitShape<typeof TrustActivitySchema>["details"] {
  const s = spec.kind;
  const o = output?.kind;
  switch (s.case) {
    case "cohortQuery": {
      const answered = o?.case === "cohortQuery" ? o.value : undefined;
      return {
        case: "cohortQuery",
        value: {
          queryId: s.value.queryId,
          sql: s.value.sql,
          recordCount: answered && answered.outcome !== CohortOutcome.SUPPRESSED ? answered.recordCount : 0n,
          threshold: answered?.threshold ?? 0,
        },
      };
    }
    case "freezeCohort": {
      const frozen = o?.case === "freezeCohort" && !o.value.suppressed ? o.value : undefined;
      return { case: "freezeCohort", value: { queryId: s.value.queryId, personCount: frozen?.personCount ?? 0n, studyCount: frozen?.studyCount ?? 0n } };
    }
    case "training":
      return {
        case: "training",
        value: {
          jobId: s.value.jobId,
          modelId: r.model_id ?? "",
          modelName: r.model_name ?? "",
          round: s.value.round,
          stop: s.value.action === TrainingAction.STOP,
          evaluate: s.value.evaluate,
          samples: o?.case === "training" ? o.value.samples : 0n,
        },
      };
    case "imagingImport": {
      const counts = o?.case === "imagingImport" ? o.value : undefined;
      return {
        case: "imagingImport",
        value: {
          studiesRequested: counts?.studiesRequested ?? 0n,
          studiesImported: counts?.studiesImported ?? 0n,
          studiesFailed: counts?.studiesFailed ?? 0n,
          studiesNotFound: counts?.studiesNotFound ?? 0n,
          convertToNifti: s.value.convertToNifti,
        },
      };
    }
    case "imagingDelete": {
      const deleted = o?.case === "imagingDelete" ? o.value : undefined;
      return { case: "imagingDelete", value: { reason: s.value.reason, studiesDeleted: deleted?.studiesDeleted ?? 0n, imagesDeleted: deleted?.imagesDeleted ?? 0n } };
    }
    default:
      return { case: undefined };
  }
}
