import { DecisionState, FreezeState, ProjectStatus, type TrustDecision } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { Badge, type Tone } from "../../ui/page.js";
import { formatCount } from "../../ui/format.js";

const STATUS: Record<ProjectStatus, [string, Tone]> = {
  [ProjectStatus.UNSPECIFIED]: ["unknown", "neutral"],
  [ProjectStatus.UNSTAGED]: ["not staged", "neutral"],
  [ProjectStatus.STAGED]: ["staged", "info"],
  [ProjectStatus.APPROVED]: ["approved", "good"],
};

const DECISION: Record<DecisionState, [string, Tone]> = {
  [DecisionState.UNSPECIFIED]: ["unknown", "neutral"],
  [DecisionState.PENDING]: ["pending", "warn"],
  [DecisionState.APPROVED]: ["approved", "good"],
  [DecisionState.DECLINED]: ["declined", "bad"],
  [DecisionState.WITHDRAWN]: ["withdrawn", "bad"],
};

const FREEZE: Record<FreezeState, [string, Tone]> = {
  [FreezeState.UNSPECIFIED]: ["—", "neutral"],
  [FreezeState.NOT_REQUESTED]: ["not frozen", "neutral"],
  [FreezeState.PENDING]: ["freezing", "info"],
  [FreezeState.FROZEN]: ["frozen", "good"],
  [FreezeState.SUPPRESSED]: ["frozen, count suppressed", "warn"],
  [FreezeState.FAILED]: ["freeze failed", "bad"],
};

export const projectStatusWords = (s: ProjectStatus): string => STATUS[s][0];
export const decisionWords = (s: DecisionState): string => DECISION[s][0];
export const freezeWords = (s: FreezeState): string => FREEZE[s][0];

export function ProjectStatusBadge({ status }: { status: ProjectStatus }) {
  const [words, tone] = STATUS[status];
  return <Badge tone={tone}>{words}</Badge>;
}

export function DecisionBadge({ state }: { state: DecisionState }) {
  const [words, tone] = DECISION[state];
  return <Badge tone={tone}>{words}</Badge>;
}

/** The approved cohort at a trust: whether it is frozen, and its size when the trust may say. */
export function FreezeBadge({ decision }: { decision: TrustDecision }) {
  const [words, tone] = FREEZE[decision.freezeState];
  const frozen = decision.freezeState === FreezeState.FROZEN;
  return <Badge tone={tone}>{frozen ? `${words}: ${formatCount(decision.frozenPersonCount)} persons` : words}</Badge>;
}
