import { DecisionState, FreezeState, type TrustDecision } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ActivityOutcome, type TrustActivity } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { Badge, type Tone } from "../../ui/page.js";
import { formatCount } from "../../ui/format.js";

const DECISION: Record<DecisionState, [string, Tone]> = {
  [DecisionState.UNSPECIFIED]: ["unknown", "neutral"],
  [DecisionState.PENDING]: ["waiting", "warn"],
  [DecisionState.APPROVED]: ["approved", "good"],
  [DecisionState.DECLINED]: ["declined", "bad"],
  [DecisionState.WITHDRAWN]: ["withdrawn", "bad"],
};

export function DecisionBadge({ state }: { state: DecisionState }) {
  const [words, tone] = DECISION[state];
  return <Badge tone={tone}>{words}</Badge>;
}

const FREEZE: Record<FreezeState, [string, Tone]> = {
  [FreezeState.UNSPECIFIED]: ["—", "neutral"],
  [FreezeState.NOT_REQUESTED]: ["not frozen", "neutral"],
  [FreezeState.PENDING]: ["freezing…", "info"],
  [FreezeState.FROZEN]: ["frozen", "good"],
  [FreezeState.SUPPRESSED]: ["frozen, size suppressed", "warn"],
  [FreezeState.FAILED]: ["freeze failed", "bad"],
};

/** The approved cohort at the trust: freezing, frozen with the size the trust reported, or suppressed. */
export function FreezeBadge({ decision }: { decision: TrustDecision }) {
  const [words, tone] = FREEZE[decision.freezeState];
  const title =
    decision.freezeState === FreezeState.SUPPRESSED ? "The trust froze the cohort but did not report its size: it is under the trust's threshold." : undefined;
  return (
    <Badge tone={tone} title={title}>
      {decision.freezeState === FreezeState.FROZEN ? `${words}: ${formatCount(decision.frozenPersonCount)} persons` : words}
    </Badge>
  );
}

const KIND: Record<TaskKind, string> = {
  [TaskKind.UNSPECIFIED]: "Other work",
  [TaskKind.ECHO]: "Diagnostic",
  [TaskKind.COHORT_QUERY]: "Cohort query",
  [TaskKind.FREEZE_COHORT]: "Cohort freeze",
  [TaskKind.IMAGING_IMPORT]: "Imaging import",
  [TaskKind.TRAINING]: "Training",
  [TaskKind.IMAGING_DELETE]: "Imaging deletion",
};

export const kindWords = (k: TaskKind): string => KIND[k];

/** The ledger's kinds, in the order the filter offers them. */
export const LEDGER_KINDS: TaskKind[] = [
  TaskKind.COHORT_QUERY,
  TaskKind.FREEZE_COHORT,
  TaskKind.TRAINING,
  TaskKind.IMAGING_IMPORT,
  TaskKind.IMAGING_DELETE,
  TaskKind.ECHO,
];

/** What came of a piece of work, in the words of its kind ("answered", "frozen", "trained"). */
export function outcomeWords(a: TrustActivity): [string, Tone] {
  switch (a.outcome) {
    case ActivityOutcome.IN_PROGRESS:
      return [a.kind === TaskKind.COHORT_QUERY ? "waiting for the answer" : "in progress", "info"];
    case ActivityOutcome.DONE:
      return doneWords(a);
    case ActivityOutcome.SUPPRESSED:
      return [a.kind === TaskKind.FREEZE_COHORT ? "frozen, size suppressed" : "suppressed", "warn"];
    case ActivityOutcome.REFUSED:
      return [a.outcomeDetail === "denied_by_policy" ? "refused by policy" : "refused by a rule", "bad"];
    case ActivityOutcome.FAILED:
      return ["error", "bad"];
    case ActivityOutcome.CANCELLED:
      return ["cancelled", "neutral"];
    default:
      return ["unknown", "neutral"];
  }
}

function doneWords(a: TrustActivity): [string, Tone] {
  const d = a.details;
  switch (d.case) {
    case "cohortQuery":
      return ["answered", "good"];
    case "freezeCohort":
      return ["frozen", "good"];
    case "training":
      return [d.value.stop ? "stopped" : d.value.evaluate ? "evaluated" : "trained", "good"];
    case "imagingImport": {
      const { studiesImported: imported, studiesRequested: requested } = d.value;
      if (imported >= requested) return ["imported", "good"];
      return [imported === 0n ? "none imported" : "partly imported", "warn"];
    }
    case "imagingDelete":
      return ["deleted", "good"];
    default:
      return [a.kind === TaskKind.ECHO ? "answered" : "done", "good"];
  }
}

export function OutcomeBadge({ activity }: { activity: TrustActivity }) {
  const [words, tone] = outcomeWords(activity);
  return <Badge tone={tone}>{words}</Badge>;
}
